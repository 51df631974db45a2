"""The package's architecture, read from its imports: no import circles, and every arrow points down.

Every ``import`` in ``src/gencrop`` counts, also those inside functions and ``TYPE_CHECKING``
blocks: an import deferred to save start-up time is still a dependency. The layers, bottom first:

    foundation  geometry, io, errors, validation, shapes, model_files (plain data and files)
    data        what the network learns from and is judged on
    modeling    the network (torch)
    runtime     running a network (onnxruntime or torch)
    crop        the Cropper, the subject finder, export, pictures, the package's front door
    jobs        the data engine, training, evaluation
    apps        the command line, the server and the batch job

A module may import its own layer and the layers below it, never a layer above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gencrop"

LAYERS = [
    ("foundation", ["geometry", "io", "errors", "validation", "shapes", "model_files"]),
    ("data", ["data"]),
    ("modeling", ["modeling"]),
    ("runtime", ["runtime"]),
    (
        "crop",
        [
            "",
            "inference",
            "crop_prepare",
            "crop_batch",
            "crop_result",
            "crop_deprecated",
            "subject",
            "subjects",
            "subject_rule",
            "export",
            "visualize",
        ],
    ),  # "": gencrop/__init__.py
    ("jobs", ["engine", "training", "evaluation"]),
    ("apps", ["cli", "serve", "batch", "__main__"]),
]

# Arrows still pointing up, each with the reason it is allowed for now (none).
KNOWN_UPWARD: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_imports() -> dict[str, set[str]]:
    """Each gencrop module -> the gencrop modules it imports (a name imported from a package that
    is one of its modules counts as that module)."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                submodules = [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in modules]
                targets = submodules if len(submodules) == len(node.names) else [source, *submodules]
            else:
                continue
            for target in targets:
                while target and target not in modules:  # import gencrop.x.y -> the module it names
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def layer_of(module: str) -> int:
    rel = module.removeprefix("gencrop").removeprefix(".")
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (rel == prefix or rel.startswith(prefix + ".") or prefix == "" and rel == "") and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    if best is None:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {__file__}")
    return best


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


@pytest.fixture(scope="module")
def graph():
    return read_imports()


def test_the_reader_sees_every_kind_of_import(graph):
    """The reader itself: relative, absolute, deferred and type-only imports all show up."""
    assert "gencrop.geometry" in graph["gencrop.shapes"]  # from .geometry import Box
    assert "gencrop.modeling" in graph["gencrop.training.loop"]  # from ..modeling import GenCrop
    assert "gencrop.inference" in graph["gencrop"]  # deferred, inside __getattr__
    assert layer_of("gencrop") == layer_of("gencrop.inference") and layer_of("gencrop.cli.crop") == len(LAYERS) - 1
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles(graph):
    found = circles(graph)
    assert not found, "import circles: " + "; ".join(" <-> ".join(g) for g in found)


def test_no_upward_arrows(graph):
    upward = sorted(
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if layer_of(b) > layer_of(a) and (a, b) not in KNOWN_UPWARD
    )
    named = [f"{a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})" for a, b in upward]
    assert not upward, "imports pointing up a layer:\n" + "\n".join(named)


def test_the_known_exceptions_are_still_needed(graph):
    stale = sorted(pair for pair in KNOWN_UPWARD if pair[1] not in graph.get(pair[0], set()))
    assert not stale, f"no longer imported, remove from KNOWN_UPWARD: {stale}"
