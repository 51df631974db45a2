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

from .. import __version__

# Order is the order of `gencrop --help`.
COMMAND_MODULES = [
    "gencrop.cli.crop",
    "gencrop.cli.serve",
    "gencrop.cli.train",
    "gencrop.cli.engine",
    "gencrop.cli.data",
    "gencrop.cli.evaluate",
]


class CommandError(Exception):
    """An error to show the user as one line (exit code 2), without a traceback."""


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
