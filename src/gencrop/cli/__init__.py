"""`gencrop <command>`: one entry point, one module per family of commands.

Each module in ``COMMAND_MODULES`` defines ``register(subparsers)``, which adds
its sub-commands and sets ``func`` on each; ``func(args)`` returns the exit
code. Heavy libraries are imported inside the commands, so ``gencrop --help``
stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .. import __version__

# Order is the order of `gencrop --help`.
COMMAND_MODULES = [
    "gencrop.cli.crop",
    "gencrop.cli.train",
    "gencrop.cli.engine",
    "gencrop.cli.data",
    "gencrop.cli.evaluate",
]


class CommandError(Exception):
    """An error to show the user as one line (exit code 2), without a traceback."""


def require_path(path: str, kind: str = "folder") -> None:
    """A path the user gave must exist as a ``kind`` ("file" or "folder"): checked before anything loads."""
    p = Path(path)
    if not (p.is_dir() if kind == "folder" else p.is_file()):
        raise CommandError(f"{path}: " + (f"not a {kind}" if p.exists() else f"no such {kind}"))


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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CommandError as e:
        print(f"gencrop {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gencrop {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
