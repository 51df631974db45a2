"""The commands and names in README.md, CONTRIBUTING.md, docs/*.md and examples/: they must exist.

Every ``gencrop`` command of a ``bash`` (or untagged) block and of the
example scripts must be accepted by the command line parser (options spelled as the code spells them). The README's cropping
commands and its Python example run in a sandbox folder that holds the files
they name (``photo.jpg``, ``photos/``, ``subjects.json``, ``runs/my-model``,
``src/`` of this checkout).

Beyond whole commands, the docs' other names are checked against the code:
paths inside the checkout, ``--flags`` (of the ``gencrop`` command they follow,
of the repository's scripts, or of the few outside tools the docs show),
``GenCropConfig`` / ``config.json`` keys, and the names Python snippets import
from ``gencrop``. The worked example's split snippet (docs/engine.md) runs on
a small dataset.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import gzip
import importlib.util
import io
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from gencrop.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# every text a user reads or runs: the docs, the contributing guide and the example scripts
NAMING_FILES = [*DOC_FILES, REPO / "CONTRIBUTING.md", *sorted((REPO / "examples").glob("*.sh"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def fenced_blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text(encoding="utf-8")) if lang == language]


def gencrop_commands(block: str) -> list[list[str]]:
    """The ``gencrop`` commands of a shell block as argument lists (after ``gencrop``).

    Continuation lines are joined, comments dropped, ``a && b`` split,
    variables set in the block (``COMMON="..."``) expanded, the brackets of
    optional parts (``[--workers 16]``) removed; ``accelerate launch -m
    gencrop`` counts; a command with an elided ``...`` is left out.
    """
    commands = []
    variables: dict[str, str] = {}
    for line in block.replace("\\\n", " ").splitlines():
        assignment = re.fullmatch(r"\s*([A-Za-z_]\w*)=(\((.*)\)|\S.*)\s*", line)
        if assignment and "$" not in line:  # a literal: a string, or an array (words)
            value = assignment[3] if assignment[3] is not None else " ".join(shlex.split(assignment[2]))
            variables[assignment[1]] = value
            continue
        if "gencrop" not in line.split("#")[0]:  # prose in an untagged block is not shell
            continue
        for name, value in variables.items():
            line = re.sub(r'"?\$(%s\b|\{%s(\[@\])?\})"?' % (name, name), lambda _: value, line)
        words = shlex.split(line, comments=True)
        command: list[str] = []
        for word in [*words, "&&"]:
            if word != "&&":
                command.append(word)
                continue
            argv = _gencrop_argv(command)
            if argv is not None and "..." not in argv:
                commands.append([w.strip("[]") for w in argv if w.strip("[]")])
            command = []
    return commands


def _gencrop_argv(command: list[str]) -> list[str] | None:
    """The arguments of ``gencrop ...`` or ``accelerate launch [...] -m gencrop ...``; None for other commands."""
    if command[:1] == ["gencrop"]:
        # "gencrop eval: error: ..." in a block is the program's output, not a command
        return None if command[1:2] and command[1].endswith(":") else command[1:]
    if command[:2] == ["accelerate", "launch"] and "-m" in command:
        start = command.index("-m") + 1
        if command[start : start + 1] == ["gencrop"]:
            return command[start + 1 :]
    return None


def documented_commands() -> list[tuple[str, list[str]]]:
    """``(file, argv)`` for the commands of the docs' shell blocks and of the example scripts."""
    found = []
    for path in DOC_FILES:
        for block in fenced_blocks(path, "bash") + fenced_blocks(path, ""):
            found += [(path.name, argv) for argv in gencrop_commands(block)]
    for path in sorted((REPO / "examples").glob("*.sh")):
        found += [(path.name, argv) for argv in gencrop_commands(path.read_text(encoding="utf-8"))]
    return found


def test_the_extraction_reads_shell_blocks_as_a_shell_would():
    block = (
        "pip install -e . && gencrop crop a.jpg --json   # a comment\n"
        "gencrop unsplash prepare H U -o data [--categories portrait cat]\n"
        "accelerate launch -m gencrop train d -o r ...\n"
        "accelerate launch --num_processes 2 -m gencrop train d -o r\n"
        'COMMON="--dim 64 --epochs 2"\n'
        "gencrop eval r \\\n  --benchmark fcdb\n"
        "gencrop train $DATA/d $COMMON\n"
        "ARGS=(--seed 1 --resume)\n"
        'gencrop train d "${ARGS[@]}" --lr 1\n'
    )
    assert gencrop_commands(block) == [
        ["crop", "a.jpg", "--json"],
        ["unsplash", "prepare", "H", "U", "-o", "data", "--categories", "portrait", "cat"],
        ["train", "d", "-o", "r"],
        ["eval", "r", "--benchmark", "fcdb"],
        ["train", "$DATA/d", "--dim", "64", "--epochs", "2"],
        ["train", "d", "--seed", "1", "--resume", "--lr", "1"],
    ]


def test_every_documented_command_parses():
    commands = documented_commands()
    assert len(commands) >= 20, commands  # the extraction found the docs' commands
    parser = build_parser()
    rejected = []
    for doc, argv in commands:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                args = parser.parse_args(argv)
        except SystemExit:
            rejected.append(f"{doc}: gencrop {shlex.join(argv)}: {err.getvalue().strip().splitlines()[-1]}")
            continue
        assert callable(getattr(args, "func", None)), argv
    assert not rejected, "\n".join(rejected)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, example_photo):
    """A folder holding what the cropping examples name."""
    torch = pytest.importorskip("torch")

    from gencrop.modeling import GenCrop, GenCropConfig

    d = tmp_path_factory.mktemp("docs")
    (d / "src").symlink_to(REPO / "src")
    shutil.copy(example_photo, d / "photo.jpg")
    (d / "photos").mkdir()
    shutil.copy(example_photo, d / "photos" / "a.jpg")
    (d / "subjects.json").write_text(json.dumps({"a.jpg": [150, 30, 200, 300]}))
    torch.manual_seed(0)
    GenCrop(GenCropConfig(arch="mobilenetv2_050", image_size=64)).save_pretrained(d / "runs" / "my-model")
    return d


@pytest.mark.slow
def test_cropping_commands_run_as_written(sandbox, monkeypatch, capsys):
    monkeypatch.chdir(sandbox)
    crops = [(doc, argv) for doc, argv in documented_commands() if argv[0] == "crop" and doc == "README.md"]
    assert any(doc == "README.md" and "src/gencrop/assets/astronaut.jpg" in argv for doc, argv in crops)
    for doc, argv in crops:
        code = main(argv)
        out = capsys.readouterr()
        assert code == 0, f"{doc}: gencrop {shlex.join(argv)}\n{out.err}"
    assert (sandbox / "crops" / "astronaut_crop.jpg").is_file() and (sandbox / "crops" / "astronaut_vis.jpg").is_file()


@pytest.mark.slow
def test_readme_python_example_runs(sandbox, monkeypatch, capsys):
    monkeypatch.chdir(sandbox)
    blocks = fenced_blocks(REPO / "README.md", "python")
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert "Box(" in capsys.readouterr().out


# ----------------------------------------------------------------------------
# names the docs use
# ----------------------------------------------------------------------------
# flags of the outside tools the docs show (pip, torchrun, accelerate, ruff, ray), by tool
OTHER_TOOLS_FLAGS = {
    "pip": {"--no-deps", "--index-url", "--upgrade", "--only-binary", "--python-version"},
    "ray start": {"--address"},
    "torchrun": {"--nproc_per_node", "--nnodes", "--node_rank", "--master_addr"},
    "accelerate": {"--multi_gpu", "--num_processes", "--cpu"},
    "ruff": {"--check", "--fix"},
}
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9_-]*)")
SCRIPT = re.compile(r"\b((?:benchmarks|tools)/[\w-]+\.py)\b")


def repo_dirs() -> list[str]:
    """The checkout's top-level folders a doc may name (``src``, ``docs``, ``.ci``, ...)."""
    return sorted(p.name for p in REPO.iterdir() if p.is_dir() and (not p.name.startswith(".") or p.name == ".ci"))


def repo_paths(text: str) -> list[str]:
    """Paths inside the checkout a text names (``src/gencrop/assets/astronaut.jpg``, ``docs/engine.md``)."""
    pattern = re.compile(r"(?<![\w./~$<-])((?:%s)/[\w./-]*)" % "|".join(map(re.escape, repo_dirs())))
    return [m.rstrip(".,:;") for m in pattern.findall(text)]


def line_of(text: str, fragment: str) -> int:
    return text[: text.find(fragment)].count("\n") + 1


def test_docs_name_only_paths_that_exist():
    missing = []
    for path in NAMING_FILES:
        text = path.read_text(encoding="utf-8")
        for name in repo_paths(text):
            if not (REPO / name).exists():
                missing.append(f"{path.name}:{line_of(text, name)}: {name}")
        for target in re.findall(r"\]\(([^)#\s]+)", text):  # markdown links
            if not target.startswith(("http://", "https://", "mailto:")) and not (path.parent / target).exists():
                missing.append(f"{path.name}: link {target}")
    assert not missing, "\n".join(missing)


def test_the_path_check_finds_what_is_not_there():
    assert repo_paths("run `python benchmarks/bench_light.py`, see docs/engine.md.") == [
        "benchmarks/bench_light.py",
        "docs/engine.md",
    ]
    assert not (REPO / repo_paths("see docs/no-such-page.md")[0]).exists()
    assert repo_paths("data/mine/outpaint ~/benchmarks $D/outpaint") == []  # the user's folders, not ours


def test_documented_commands_give_no_code_folder_as_data():
    """A path of the checkout given to a ``gencrop`` command exists and is not a folder of scripts."""
    wrong = []
    for doc, argv in documented_commands():
        for word in argv:
            for name in repo_paths(word):
                target = REPO / name
                if not target.exists():
                    wrong.append(f"{doc}: gencrop {shlex.join(argv)}: {name} does not exist")
                elif target.is_dir() and any(target.glob("*.py")):
                    wrong.append(f"{doc}: gencrop {shlex.join(argv)}: {name} is a folder of Python code, not data")
    assert not wrong, "\n".join(wrong)
    assert any("src/gencrop/assets/astronaut.jpg" in argv for _, argv in documented_commands())


def parser_options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


def sub_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


@functools.cache
def cli_parser() -> argparse.ArgumentParser:
    return build_parser()


def command_options(words: list[str]) -> tuple[str, set[str]]:
    """``(name, options)`` of the (sub-)command that ``gencrop WORDS...`` runs."""
    parser, name = cli_parser(), "gencrop"
    for word in words:
        subs = sub_parsers(parser)
        if word not in subs:
            break
        parser, name = subs[word], f"{name} {word}"
    return name, parser_options(parser)


def all_gencrop_options() -> set[str]:
    found, todo = set(), [cli_parser()]
    while todo:
        parser = todo.pop()
        found |= parser_options(parser)
        todo += sub_parsers(parser).values()
    return found


def script_flags() -> set[str]:
    """The options the repository's scripts (benchmarks/, tools/) define."""
    sources = [p.read_text(encoding="utf-8") for d in ("benchmarks", "tools") for p in (REPO / d).glob("*.py")]
    return {f for text in sources for f in re.findall(r"[\"'](--[a-z][a-z0-9_-]*)[\"']", text)}


def test_every_flag_in_the_docs_exists():
    """``--flags`` in prose and code: of the ``gencrop`` command a code span runs (its own options), of
    the script the line runs (its source); otherwise of some ``gencrop`` command, some script of the
    repository, or an outside tool the file names (pip, torchrun, accelerate, ruff, ray)."""
    everything = all_gencrop_options() | script_flags()
    unknown = []
    for path in NAMING_FILES:
        text = path.read_text(encoding="utf-8")
        tools = set().union(*(flags for tool, flags in OTHER_TOOLS_FLAGS.items() if tool in text))
        spans = CODE_SPAN.findall(text) if path.suffix == ".md" else []
        for span in spans:  # an inline `gencrop ...` command: its flags must be that command's
            words = span.split()
            if words[:1] == ["gencrop"]:
                name, options = command_options(words[1:])
                unknown += [f"{path.name}: `{span}`: {name} has no {f}" for f in FLAG.findall(span) if f not in options]
        for number, line in enumerate(text.splitlines(), 1):
            for flag in FLAG.findall(line):
                before = line[: line.find(flag)]
                script = SCRIPT.findall(before)
                if script:
                    ok = f'"{flag}"' in (REPO / script[-1]).read_text(encoding="utf-8")
                else:
                    ok = flag in everything or flag in tools
                if not ok:
                    unknown.append(f"{path.name}:{number}: {flag}")
    assert not unknown, "\n".join(unknown)


def test_the_flag_check_tells_commands_apart():
    assert command_options(["eval"])[0] == "gencrop eval" and "--no-bad-filter" in command_options(["eval"])[1]
    assert command_options(["dataset", "check"])[0] == "gencrop dataset check"
    assert "--workerz" not in all_gencrop_options() and "--subject" not in command_options(["train"])[1]


def config_field_names() -> set[str]:
    """``GenCropConfig``'s fields, read from its source (no torch needed)."""
    tree = ast.parse((REPO / "src" / "gencrop" / "modeling" / "config.py").read_text(encoding="utf-8"))
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "GenCropConfig")
    return {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}


def test_config_keys_in_the_docs_exist():
    fields = config_field_names()
    assert {"arch", "subject_weighting", "subject_pull", "in_channels"} <= fields
    wrong = []
    for path in NAMING_FILES:
        text = path.read_text(encoding="utf-8")
        for call in re.findall(r"GenCropConfig\(([^)]*)\)", text):
            wrong += [f"{path.name}: GenCropConfig({call})" for k in re.findall(r"(\w+)\s*=", call) if k not in fields]
        for number, line in enumerate(text.splitlines(), 1):
            if "config.json" not in line:
                continue
            named = re.findall(r"`(\w+)` in (?:the )?`config\.json`", line) + re.findall(r'`"(\w+)": ', line)
            wrong += [f"{path.name}:{number}: {k}" for k in named if k not in fields]
    assert not wrong, "\n".join(wrong)


def module_names(module: str) -> set[str] | None:
    """The top-level names a ``gencrop`` module defines or imports (from its source), None if it is not one."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):  # lazily imported names
                names |= set(ast.literal_eval(node.value))
    if spec.submodule_search_locations:  # a package: its sub-modules too
        names |= {p.stem for loc in spec.submodule_search_locations for p in Path(loc).iterdir()}
    return names


def test_python_snippets_import_what_exists():
    wrong, seen = [], 0
    for path in DOC_FILES:
        for block in fenced_blocks(path, "python"):
            for node in ast.walk(ast.parse(block)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "gencrop":
                    seen += 1
                    names = module_names(node.module)
                    if names is None:
                        wrong.append(f"{path.name}: no module {node.module}")
                        continue
                    wrong += [f"{path.name}: {node.module} has no {a.name}" for a in node.names if a.name not in names]
    assert seen >= 3 and not wrong, "\n".join(wrong)
    assert "photo_size" not in module_names("gencrop.data.benchmarks")  # what the check would have caught


def test_worked_example_split_snippet_takes_the_most_prominent_subject(tmp_path, monkeypatch):
    """docs/engine.md's snippet on three photos: a big dog beats a more confident tiny person; none -> null."""
    from PIL import Image

    block = next(b for b in fenced_blocks(REPO / "docs" / "engine.md", "python") if "subject_xywh" in b)
    root = tmp_path / "data" / "demo"
    (root / "photos").mkdir(parents=True)
    for pid in ("1", "2", "3"):
        Image.new("RGB", (400, 200), (90, 90, 90)).save(root / "photos" / f"img{pid}.jpg")
    detections = {
        "img1": [
            {"xywh": [10, 10, 20, 30], "score": 0.9, "class": "person", "mask_id": 0},  # best score, tiny
            {"xywh": [100, 20, 200, 160], "score": 0.6, "class": "dog", "mask_id": 1},  # most prominent
        ],
        "img2": [{"xywh": [300, 50, 150, 100], "score": 0.8, "class": "cat", "mask_id": 2}],  # runs past the edge
        "img3": [],
    }
    (root / "photo-seg").mkdir()
    (root / "photo-seg" / "detect.json.gz").write_bytes(gzip.compress(json.dumps(detections).encode()))
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "docs/engine.md", "exec"), {})
    entries = {
        e["id"]: e["subject_xywh"]
        for s in ("train", "val", "test")
        for e in json.loads((root / f"{s}.json").read_text())
    }
    assert entries["1"] == pytest.approx([100 / 400, 20 / 200, 200 / 400, 160 / 200])
    assert entries["2"] == pytest.approx([300 / 400, 50 / 200, 100 / 400, 100 / 200])  # clamped to the photo
    assert entries["3"] is None
