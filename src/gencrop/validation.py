"""Checking every data file gencrop reads, so that a bad one is reported in one line.

Researchers' datasets are large, hand-made and often half-written by a killed
job. Every reader goes through this module: a problem becomes a
:class:`DataError` that names the file and the entry
(``test.json: entry 12 (id "abc"): subject_xywh has 3 values``), raised
before long work starts; commands print it as one line and exit 1.

Formats checked here:

* split files ``train/val/test.json``: ``[{"id": str, "subject_xywh": [x, y, w, h] in 0-1 | null}]``
  (:func:`read_split`, :func:`split_entry_problems`, :func:`check_disjoint_splits`);
* detection files ``detect.json.gz``: ``{stem: [{"xywh": [x, y, w, h], "mask_id", ...}]}`` (:func:`read_detections`);
* mask files ``mask.npz``: ``{str(mask_id): N x 2 polygon}`` (:func:`read_masks`);
* boxes of benchmark annotations (:func:`annotation_box`, :func:`outside_photo`);
* output folders and files, before any work (:func:`check_writable`).

JSON itself (plain or gzipped) is checked in :func:`gencrop.io.read_json`
and images in :func:`gencrop.io.load_image` / :func:`gencrop.io.image_size`,
which raise the same error type.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

__all__ = [
    "DataError",
    "OutputError",
    "box_problem",
    "subject_problem",
    "split_entry_problems",
    "read_split",
    "check_disjoint_splits",
    "read_detections",
    "read_masks",
    "annotation_box",
    "outside_photo",
    "add_crop",
    "EDGE_TOLERANCE",
    "check_writable",
]

# px an annotated crop may overshoot its photo (rounding in annotation tools; FCDB has up to 2 px)
EDGE_TOLERANCE = 2.0
# slack for 0-1 coordinates written with rounding
UNIT_TOLERANCE = 1e-6


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


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------
# boxes
# ----------------------------------------------------------------------------
def box_problem(value: Any, name: str = "box") -> str | None:
    """What is wrong with a box of four finite numbers with positive size (``None`` if nothing)."""
    if not isinstance(value, (list, tuple)):
        return f"{name} must be a list of 4 numbers; got {type(value).__name__} {_short(value)}"
    if len(value) != 4:
        return f"{name} has {len(value)} values (expected 4: x, y, w, h); got {_short(value)}"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return f"{name} values must be numbers; got {_short(value)}"
    if not all(math.isfinite(v) for v in value):
        return f"{name} values must be finite; got {_short(value)}"
    return None


def subject_problem(value: Any, name: str = "subject_xywh") -> str | None:
    """What is wrong with a subject ``[x, y, w, h]`` in 0-1 of the photo, or ``null`` (``None`` if nothing)."""
    if value is None:
        return None
    msg = box_problem(value, name)
    if msg:
        return msg
    x, y, w, h = (float(v) for v in value)
    if w <= 0 or h <= 0:
        return f"{name} width and height must be positive; got w={w:g}, h={h:g}"
    bad = []
    if x < -UNIT_TOLERANCE or y < -UNIT_TOLERANCE:
        bad.append(f"x={x:g}, y={y:g} below 0")
    if x + w > 1 + UNIT_TOLERANCE:
        bad.append(f"x+w={x + w:g} > 1")
    if y + h > 1 + UNIT_TOLERANCE:
        bad.append(f"y+h={y + h:g} > 1")
    if bad:
        return (
            f"{name} must be in 0-1 coordinates of the photo ("
            + "; ".join(bad)
            + ")"
            + (" - looks like pixels" if max(x + w, y + h) > 2 else "")
        )
    return None


# ----------------------------------------------------------------------------
# split files
# ----------------------------------------------------------------------------
def split_entry_problems(entry: Any) -> tuple[str | None, list[str]]:
    """``(id or None, problems)`` of one split-file entry; the id is ``None`` when it is unusable."""
    if not isinstance(entry, dict):
        return None, [f"must be an object with id and subject_xywh; got {type(entry).__name__} {_short(entry)}"]
    pid = entry.get("id")
    if pid is None:
        return None, ['no "id"']
    if not isinstance(pid, str):
        return None, [f"id must be a string (photos are img<ID>.jpg); got {type(pid).__name__} {_short(pid)}"]
    if not pid or "/" in pid or os.sep in pid:
        return None, ["id must be a non-empty file-name part (no slashes)"]
    if "subject_xywh" not in entry:
        return pid, ['no "subject_xywh" (use null for a photo without a subject)']
    msg = subject_problem(entry["subject_xywh"])
    return pid, [msg] if msg else []


def read_split(path: str | os.PathLike) -> list[dict]:
    """The entries of a split file, checked: ``[{"id": str, "subject_xywh": [4 floats] | None}]``.

    The first problem stops the reading (a split decides what is trained and
    scored: a half-understood one must not be used); ``gencrop dataset check``
    lists them all.
    """
    from .io import read_json

    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(f'must be a JSON list of {{"id", "subject_xywh"}} entries; got {type(data).__name__}', path)
    out, seen = [], {}
    for i, entry in enumerate(data):
        pid, problems = split_entry_problems(entry)
        if problems:
            raise DataError(problems[0], path, i, pid)
        if pid in seen:
            raise DataError(f"duplicate id (also entry {seen[pid]})", path, i, pid)
        seen[pid] = i
        subject = entry["subject_xywh"]
        out.append({"id": pid, "subject_xywh": None if subject is None else [float(v) for v in subject]})
    return out


def check_disjoint_splits(splits: Mapping[str | os.PathLike, Iterable[dict]]) -> None:
    """A photo must be in one split only: one trained on and validated (or scored) on is an error."""
    first: dict[str, str] = {}
    for path, entries in splits.items():
        for i, entry in enumerate(entries):
            pid = entry["id"]
            if pid in first:
                raise DataError(
                    f"id also in {first[pid]}: a photo must be in one split only "
                    "(`gencrop dataset check` lists every overlap)",
                    path,
                    i,
                    pid,
                )
        for entry in entries:
            first.setdefault(entry["id"], Path(path).name)


# ----------------------------------------------------------------------------
# detections and masks
# ----------------------------------------------------------------------------
def read_detections(path: str | os.PathLike) -> dict[str, list[dict]]:
    """``detect.json.gz``, checked: ``{stem: [{"xywh": [x, y, w, h] (w, h >= 0), "mask_id"?, ...}]}``."""
    from .io import read_json

    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"must map image names to lists of detections; got {type(data).__name__}", path)
    for stem, recs in data.items():
        if not isinstance(recs, list):
            raise DataError(f"must be a list of detections; got {type(recs).__name__} {_short(recs)}", path, stem)
        for k, rec in enumerate(recs):
            if not isinstance(rec, dict):
                raise DataError(f"detection {k} must be an object with xywh; got {_short(rec)}", path, stem)
            if "xywh" not in rec:
                raise DataError(f'detection {k} has no "xywh"', path, stem)
            msg = box_problem(rec["xywh"], f"detection {k} xywh")
            if msg is None and (rec["xywh"][2] < 0 or rec["xywh"][3] < 0):
                msg = f"detection {k} xywh has a negative size; got {_short(rec['xywh'])}"
            if msg:
                raise DataError(msg, path, stem)
            mask_id = rec.get("mask_id")
            if mask_id is not None and (isinstance(mask_id, bool) or not isinstance(mask_id, (int, str))):
                raise DataError(
                    f"detection {k} mask_id must be an integer or a string; got {_short(mask_id)}", path, stem
                )
    return data


def read_masks(path: str | os.PathLike, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """``mask.npz`` polygons (all, or only ``keys``), each checked and returned as N x 2 float32 pixels."""
    from .io import load_npz

    wanted = None if keys is None else {str(k) for k in keys}
    out = {}
    for k, arr in load_npz(path).items():
        if wanted is not None and k not in wanted:
            continue
        if arr.dtype.kind not in "fiu" or arr.size % 2:
            raise DataError(f"polygon must be N x 2 numbers; got {arr.dtype} of shape {arr.shape}", path, k)
        poly = np.asarray(arr, np.float32).reshape(-1, 2)
        if not np.isfinite(poly).all():
            raise DataError("polygon has non-finite points", path, k)
        out[k] = poly
    return out


# ----------------------------------------------------------------------------
# benchmark annotations
# ----------------------------------------------------------------------------
def annotation_box(value: Any, fmt: str, file: str | os.PathLike, entry: int | str, name: str = "crop"):
    """A ground-truth or subject box of an annotation file, as a :class:`~gencrop.geometry.Box`.

    ``fmt`` is ``"xywh"`` or ``"xyxy"``; the box must have a positive size.
    """
    from .geometry import Box

    msg = box_problem(value, name)
    if msg:
        raise DataError(msg.replace("x, y, w, h", "x1, y1, x2, y2") if fmt == "xyxy" else msg, file, entry)
    box = Box.from_xywh(value) if fmt == "xywh" else Box.from_xyxy(*value)
    if box.w <= 0 or box.h <= 0:
        raise DataError(f"{name} has no area ({fmt} {_short(value)})", file, entry)
    return box


def outside_photo(box, width: int, height: int, tolerance: float = EDGE_TOLERANCE) -> str | None:
    """Why ``box`` is not a crop of a ``width`` x ``height`` photo (``None`` when it is).

    A few pixels of overshoot along the edges are tolerated (annotation tools round).
    """
    inside = box.clamp(width, height)
    if box.is_empty() or inside.is_empty() or inside.area < box.area - tolerance * (box.w + box.h):
        too_big = box.w > width + tolerance or box.h > height + tolerance
        where = "larger than" if too_big and not inside.is_empty() else "outside"
        return f"crop {[round(v, 1) for v in box.xywh]} (x, y, w, h) is {where} the {width}x{height} photo"
    return None


def add_crop(crops: dict, entries: dict, name: str, box, file: str | os.PathLike, entry: int | str) -> None:
    """Record ``box`` as the crop of photo ``name`` (``entries`` remembers where each came from).

    The same crop twice is harmless; two different crops of one photo leave
    no way to tell which was meant, so that is an error naming both entries.
    """
    if name not in crops:
        crops[name], entries[name] = box, entry
    elif tuple(crops[name].xywh) != tuple(box.xywh):
        raise DataError(
            f"{name} has two different crops: {_short(list(crops[name].xywh))} in entry {entries[name]} and "
            f"{_short(list(box.xywh))} here (x, y, w, h); keep the one meant",
            file,
            entry,
        )


# ----------------------------------------------------------------------------
# outputs
# ----------------------------------------------------------------------------
def check_writable(path: str | os.PathLike, kind: str = "folder") -> Path:
    """Make sure ``path`` (a folder, or a file with ``kind="file"``) can be written, creating nothing.

    Called before any work, so that a long job does not fail at its end: the
    nearest existing folder on the way must be a folder one can write in.
    """
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise OutputError(f"{path}: is a folder (a file name is needed)")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is a file, not a folder")
    existing = path if kind == "folder" else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{existing}: is a file, not a folder (cannot write {path})")
    try:
        fd, probe = tempfile.mkstemp(prefix=".gencrop-write-test.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        why = e.strerror or type(e).__name__
        if existing == path or (kind == "file" and existing == path.parent):
            raise OutputError(f"{existing}: cannot write there ({why})") from None
        # name what was asked for, and the folder that refused it
        raise OutputError(f"{path}: cannot be made inside {existing} ({why})") from None
    return path
