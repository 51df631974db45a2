"""The scripts beside the package (benchmarks/, tools/, examples/) name only gencrop modules and names that exist.

They are not imported by the test suite otherwise, so a module moved inside gencrop would break them
silently until someone runs a benchmark; this reads their ``from gencrop... import ...`` lines and
resolves each one.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(
    p for folder in ("benchmarks", "tools", "examples") for p in (REPO / folder).rglob("*.py") if p.is_file()
)


def gencrop_imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name or None) of every import of gencrop in a script, also those inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "gencrop":
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None) for a in node.names if a.name.split(".")[0] == "gencrop"]
    return found


def unresolved(module: str, name: str | None) -> str | None:
    """Why ``from module import name`` fails (None: it resolves, or only a third-party package is missing)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        return f"no module {e.name}" if (e.name or "").split(".")[0] == "gencrop" else None
    if name is None or name == "*" or hasattr(mod, name):
        return None
    try:
        importlib.import_module(f"{module}.{name}")
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != "gencrop":
            return None
        return f"{module} has no {name}"
    return None


def test_there_are_scripts_to_check():
    assert any(p.parent.name == "benchmarks" for p in SCRIPTS)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_script_imports_resolve(path):
    problems = [
        f"{path.relative_to(REPO)}:{line}: from {module} import {name}: {why}"
        for line, module, name in gencrop_imports(path)
        if (why := unresolved(module, name))
    ]
    assert not problems, "\n".join(problems)


def test_a_moved_module_is_reported(tmp_path):
    script = tmp_path / "old.py"
    script.write_text("def f():\n    from gencrop.data.from_crops import split_ids\n")
    ((line, module, name),) = gencrop_imports(script)
    assert (line, module, name) == (2, "gencrop.data.from_crops", "split_ids")
    assert unresolved(module, name) == "no module gencrop.data.from_crops"
    assert unresolved("gencrop.engine.from_crops", "split_ids") is None
    assert unresolved("gencrop.engine.from_crops", "no_such_name") == "gencrop.engine.from_crops has no no_such_name"
