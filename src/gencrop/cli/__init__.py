"""`gencrop <command>`: one entry point, one module per family of commands.

Each module in ``COMMAND_MODULES`` defines ``register(subparsers)``, which adds
its sub-commands and sets ``func`` on each; ``func(args)`` returns the exit
code. Heavy libraries are imported inside the commands, so ``gencrop --help``
stays fast.

Errors are one line, never a traceback: ``gencrop <cmd>: error: <message>``,
exit 1 for bad data (:class:`~gencrop.validation.DataError`, which names the
file and the entry) and 2 for bad usage (:class:`CommandError`, including an
output that cannot be written).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import NoReturn

from .. import __version__

# Order is the order of `gencrop --help`.
COMMAND_MODULES = [
    "gencrop.cli.crop",
    "gencrop.cli.batch",
    "gencrop.cli.export",
    "gencrop.cli.serve",
    "gencrop.cli.train",
    "gencrop.cli.engine",
    "gencrop.cli.data",
    "gencrop.cli.evaluate",
]


# Commands after which the process has nothing left to do: every file is written and closed, every
# line printed. Tearing the interpreter down (freeing each module, onnxruntime's sessions and thread
# pools) costs a one-photo `gencrop crop` about 60 ms of its 0.5 s, so `console` skips it after them.
QUICK_EXIT_COMMANDS = frozenset({"crop"})


class CommandError(Exception):
    """An error to show the user as one line (exit code 2), without a traceback."""


def user_error(e: Exception) -> Exception:
    """What to raise for a library error: bad data stays a ``DataError`` (exit 1), the rest is usage (exit 2)."""
    from ..validation import DataError

    if isinstance(e, DataError):
        return e
    lines = str(e).strip().splitlines()
    return CommandError(lines[0] if lines else type(e).__name__)


def writable(path, kind: str = "folder"):
    """Check an output folder (or file) before any work; a usage error when it cannot be written."""
    from ..validation import OutputError, check_writable

    if path is None:
        return None
    try:
        return check_writable(path, kind)
    except OutputError as e:
        raise CommandError(str(e)) from None


def require_path(path: str, kind: str = "folder") -> None:
    """A path the user gave must exist as a ``kind`` ("file" or "folder"): checked before anything loads."""
    p = Path(path)
    if not (p.is_dir() if kind == "folder" else p.is_file()):
        raise CommandError(f"{path}: " + (f"not a {kind}" if p.exists() else f"no such {kind}"))


SUBJECT_FINDERS = ("auto", "people", "faces", "saliency", "detector")


def add_subject_finder_option(p: argparse.ArgumentParser) -> None:
    """``--subject-finder``: the same choice on every command that finds subjects (names as in gencrop.subjects)."""
    p.add_argument(
        "--subject-finder",
        choices=SUBJECT_FINDERS,
        default="auto",
        help="what finds the subject of a photo given without one: people (the figures of the faces, else "
        "the salient region), faces (faces, else the salient region), saliency, detector (COCO objects, "
        "else saliency; needs the subject extra: torch), or auto "
        "(the measured best that ships with gencrop; default)",
    )


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 warning``, ``2 warnings``: a number with its noun in the right form."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gencrop",
        description="Subject-aware photo cropping learned from outpainted professional photos.",
    )
    parser.add_argument("--version", action="version", version=f"gencrop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub-)command that ``args`` came from, e.g. ``gencrop dataset check``'s."""
    while True:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        chosen = getattr(args, actions[0].dest, None) if actions else None
        if chosen is None or chosen not in actions[0].choices:
            return parser
        parser = actions[0].choices[chosen]


def reject_unknown(parser: argparse.ArgumentParser, args: argparse.Namespace, unknown: list[str]) -> None:
    """Exit 2 with the command's own usage, naming the closest option for each misspelled one."""
    import difflib

    target = command_parser(parser, args)
    options = [o for a in target._actions for o in a.option_strings if o.startswith("--")]
    hints = []
    for word in unknown:
        if word.startswith("--"):
            close = difflib.get_close_matches(word.split("=", 1)[0], options, n=1, cutoff=0.6)
            if close:
                hints.append(f"{word.split('=', 1)[0]}: did you mean {close[0]}?")
    target.error(f"unrecognized arguments: {' '.join(unknown)}" + (f" ({'; '.join(hints)})" if hints else ""))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        reject_unknown(parser, args, unknown)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from ..validation import DataError, OutputError

    try:
        return int(args.func(args) or 0)
    except CommandError as e:
        print(f"gencrop {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OutputError as e:
        print(f"gencrop {args.command}: error: {e}", file=sys.stderr)
        return 2
    except DataError as e:
        print(f"gencrop {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"gencrop {args.command}: interrupted", file=sys.stderr)
        return 130


def console() -> NoReturn:
    """The ``gencrop`` program (and ``python -m gencrop``): :func:`main`, then the exit.

    After a command of ``QUICK_EXIT_COMMANDS`` the process ends at once (:func:`exit_now`); the
    others exit as usual, running the handlers that Ray, Accelerate and logging register.
    """
    code = main()
    if sys.argv[1:2] and sys.argv[1] in QUICK_EXIT_COMMANDS:
        exit_now(code)
    sys.exit(code)


def exit_now(code: int) -> NoReturn:
    """End the process without the interpreter's teardown: standard streams and logging flushed first."""
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (gencrop crop ... | head): nothing more can be said
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
