"""The errors that a bad input file or output place raises, below every module that raises them.

:class:`DataError` is raised by the readers (:mod:`gencrop.io`) and the checks
(:mod:`gencrop.validation`) alike; commands print it as one line and exit 1.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["DataError", "OutputError", "where"]


class DataError(ValueError):
    """A data file (or one entry of it) is unusable; the message names the file and the entry."""

    def __init__(
        self, message: str, file: str | os.PathLike | None = None, entry: int | str | None = None, entry_id: Any = None
    ):
        self.file = None if file is None else str(file)
        self.entry, self.entry_id, self.reason = entry, entry_id, message
        super().__init__(where(self.file, entry, entry_id) + message)


class OutputError(ValueError):
    """An output folder or file cannot be written (a usage error: another -o is needed)."""


def where(file: str | None, entry: int | str | None = None, entry_id: Any = None) -> str:
    """``file: entry 12 (id "abc"): `` — the prefix of a message about one entry."""
    parts = [] if file is None else [file]
    if entry is not None:
        text = f"entry {entry}" if isinstance(entry, int) else f"entry {_quote(entry)}"
        if entry_id is not None:
            text += f" (id {_quote(entry_id)})"
        parts.append(text)
    return "".join(p + ": " for p in parts)


def _quote(value: Any) -> str:
    text = str(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return '"' + text.replace('"', '\\"') + '"'
