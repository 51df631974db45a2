"""Bringing your own photos: validate a dataset's split files, and name photos the way the tools expect.

A dataset folder holds ``train.json``, ``val.json`` and ``test.json``, each a
list of ``{"id": str, "subject_xywh": [x, y, w, h] | null}`` with the subject
in 0-1 coordinates of the photo; the photos are ``img<ID>.jpg`` in an image
folder (the ``img`` prefix keeps ids that start with a dash from looking
like command-line flags).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..io import list_images, read_json

__all__ = ["SPLITS", "Problem", "CheckReport", "check_dataset", "LinkReport", "link_photos", "photo_file"]

SPLITS = ("train", "val", "test")
TOL = 1e-6


def photo_file(photo_id: str) -> str:
    return f"img{photo_id}.jpg"


@dataclass
class Problem:
    level: str      # "error" | "warning"
    where: str      # file and entry
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


@dataclass
class CheckReport:
    counts: dict[str, int] = field(default_factory=dict)   # split -> entries
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]

    def add(self, level: str, where: str, message: str) -> None:
        self.problems.append(Problem(level, where, message))


def _check_box(value) -> str | None:
    """What is wrong with a ``subject_xywh`` value (``None`` if nothing)."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return f"subject_xywh must be [x, y, w, h] or null; got {value!r}"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return f"subject_xywh values must be numbers; got {value!r}"
    x, y, w, h = (float(v) for v in value)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return f"subject_xywh values must be finite; got {value!r}"
    if w <= 0 or h <= 0:
        return f"subject_xywh width and height must be positive; got w={w:g}, h={h:g}"
    bad = []
    if x < -TOL or y < -TOL:
        bad.append(f"x={x:g}, y={y:g} below 0")
    if x + w > 1 + TOL:
        bad.append(f"x+w={x + w:g} > 1")
    if y + h > 1 + TOL:
        bad.append(f"y+h={y + h:g} > 1")
    if bad:
        return ("subject_xywh must be in 0-1 coordinates of the photo (" + "; ".join(bad) + ")"
                + (" - looks like pixels" if max(x + w, y + h) > 2 else ""))
    return None


def check_dataset(dataset_dir: str | os.PathLike, images_dir: str | os.PathLike | None = None) -> CheckReport:
    """Check the split files of a dataset folder (and, with ``images_dir``, that every photo exists)."""
    dataset_dir = Path(dataset_dir)
    report = CheckReport()
    first_split: dict[str, str] = {}
    all_ids: dict[str, list[str]] = {}
    for split in SPLITS:
        path = dataset_dir / f"{split}.json"
        name = path.name
        if not path.is_file():
            report.add("error", name, "missing")
            continue
        try:
            data = read_json(path)
        except (OSError, ValueError) as e:
            report.add("error", name, f"not valid JSON ({e})")
            continue
        if not isinstance(data, list):
            report.add("error", name, f"must be a JSON list of entries; got {type(data).__name__}")
            continue
        report.counts[split] = len(data)
        if not data:
            report.add("warning", name, "is empty")
        seen: dict[str, int] = {}
        ids = []
        for i, entry in enumerate(data):
            where = f"{name}[{i}]"
            if not isinstance(entry, dict):
                report.add("error", where, f"must be an object with id and subject_xywh; got {entry!r:.60}")
                continue
            pid = entry.get("id")
            if pid is None:
                report.add("error", where, "no \"id\"")
                continue
            where = f"{name}[{i}] (id {pid!r})"
            if not isinstance(pid, str):
                report.add("error", where, f"id must be a string (photos are img<ID>.jpg); got {type(pid).__name__}")
                continue
            if not pid or "/" in pid or os.sep in pid:
                report.add("error", where, "id must be a non-empty file-name part (no slashes)")
                continue
            if "subject_xywh" not in entry:
                report.add("error", where, "no \"subject_xywh\" (use null for a photo without a subject)")
            else:
                msg = _check_box(entry["subject_xywh"])
                if msg:
                    report.add("error", where, msg)
            if pid in seen:
                report.add("error", where, f"duplicate id (also entry {seen[pid]})")
                continue
            seen[pid] = i
            ids.append(pid)
            if pid in first_split:
                report.add("error", where, f"id also in {first_split[pid]}.json: a photo must be in one split only")
            else:
                first_split[pid] = split
        all_ids[split] = ids

    if images_dir is not None:
        images_dir = Path(images_dir)
        if not images_dir.is_dir():
            report.add("error", str(images_dir), "no such folder")
        else:
            present = {p.name for p in images_dir.iterdir()}
            for split, ids in all_ids.items():
                missing = [pid for pid in ids if photo_file(pid) not in present]
                for pid in missing[:20]:
                    report.add("error", f"{split}.json (id {pid!r})", f"photo {images_dir / photo_file(pid)} missing")
                if len(missing) > 20:
                    report.add("error", f"{split}.json", f"... and {len(missing) - 20} more photos missing "
                                                         f"({len(missing)} of {len(ids)})")
    return report


@dataclass
class LinkReport:
    linked: int = 0
    existing: int = 0
    conflicts: list[str] = field(default_factory=list)
    not_jpeg: list[str] = field(default_factory=list)


def link_photos(src_dir: str | os.PathLike, dst_dir: str | os.PathLike) -> LinkReport:
    """Make ``dst/img<ID>.jpg`` symbolic links to the photos of ``src`` (ID = the file name's stem).

    Photos keep their bytes and their folder; only the names change. Non-JPEG
    photos are linked with their own extension (``img<ID>.png``) and listed.
    Two photos with the same stem, or a different file already at a link's
    name, are conflicts and left alone. Running it again adds only what is new.
    """
    src_dir, dst_dir = Path(src_dir).resolve(), Path(dst_dir)
    if not src_dir.is_dir():
        raise FileNotFoundError(f"{src_dir}: no such folder")
    dst_dir.mkdir(parents=True, exist_ok=True)
    report = LinkReport()
    taken: dict[str, Path] = {}
    for photo in list_images(src_dir):
        ext = photo.suffix.lower()
        link_ext = ".jpg" if ext in (".jpg", ".jpeg") else ext
        name = f"img{photo.stem}{link_ext}"
        if photo.stem in taken:
            report.conflicts.append(f"{photo.name}: same id as {taken[photo.stem].name}")
            continue
        taken[photo.stem] = photo
        if link_ext != ".jpg":
            report.not_jpeg.append(photo.name)
        link = dst_dir / name
        if link.is_symlink() or link.exists():
            if link.resolve() == photo.resolve():
                report.existing += 1
            else:
                report.conflicts.append(f"{photo.name}: {link} already exists and is another file")
            continue
        os.symlink(photo, link)
        report.linked += 1
    return report
