"""The commands shown in README.md and docs/*.md: every one parses, the cheap ones run as written.

Every ``gencrop`` command of a ``bash`` (or untagged) block and of the
example scripts must be accepted by the command line parser (options spelled as the code spells them). The README's cropping
commands and its Python example run in a sandbox folder that holds the files
they name (``photo.jpg``, ``photos/``, ``subjects.json``, ``runs/my-model``,
``src/`` of this checkout).
"""

from __future__ import annotations

import contextlib
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
    import torch

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
