"""Bringing your own photos: validate a dataset's split files, and name photos the way the tools expect.

A dataset folder holds ``train.json``, ``val.json`` and ``test.json``, each a
list of ``{"id": str, "subject_xywh": [x, y, w, h] | null}`` with the subject
in 0-1 coordinates of the photo; the photos are ``img<ID>.jpg`` in an image
folder (the ``img`` prefix keeps ids that start with a dash from looking
like command-line flags).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..io import ImageReadError, image_size, list_images, read_json
from ..validation import DataError, split_entry_problems

__all__ = ["SPLITS", "Problem", "CheckReport", "check_dataset", "LinkReport", "link_photos", "photo_file"]

SPLITS = ("train", "val", "test")


def photo_file(photo_id: str) -> str:
    return f"img{photo_id}.jpg"


@dataclass
class Problem:
    level: str  # "error" | "warning"
    where: str  # file and entry
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


@dataclass
class CheckReport:
    counts: dict[str, int] = field(default_factory=dict)  # split -> entries
    problems: list[Problem] = field(default_factory=list)
    photos_checked_in: Path | None = None  # the folder the photos were checked against

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]

    def add(self, level: str, where: str, message: str) -> None:
        self.problems.append(Problem(level, where, message))


def check_dataset(
    dataset_dir: str | os.PathLike, images_dir: str | os.PathLike | None = None, progress: bool = False
) -> CheckReport:
    """Check the split files of a dataset folder (and, with ``images_dir``, that every photo exists);
    with an ``outpaint/`` folder, everything ``gencrop train`` reads of it, as it reads it."""
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
            report.add("error", name, getattr(e, "reason", str(e)))
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
            pid, problems = split_entry_problems(entry)
            eid = entry.get("id") if isinstance(entry, dict) else None
            where = f"{name}[{i}]" if eid is None else f"{name}[{i}] (id {eid!r})"
            for msg in problems:
                report.add("error", where, msg)
            if pid is None:
                continue
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

    splits_readable = not report.errors  # the training files are read through the splits
    if images_dir is None and (dataset_dir / "outpaint" / "images").is_dir():
        images_dir = dataset_dir / "outpaint" / "images"  # a `gencrop data from-crops` dataset
    if images_dir is not None:
        images_dir = Path(images_dir)
        if not images_dir.is_dir():
            report.add("error", str(images_dir), "no such folder")
        else:
            _check_photos(report, images_dir, all_ids)
            report.photos_checked_in = images_dir
    if (dataset_dir / "outpaint" / "images").is_dir() and splits_readable:
        _check_training_files(report, dataset_dir / "outpaint", list(all_ids), progress)
    return report


def _check_training_files(report: CheckReport, outpaint_dir: Path, splits: list[str], progress: bool) -> None:
    """What ``gencrop train`` (and ``eval``) read of ``outpaint/``, through the same reader.

    The reader's errors (``detect.json.gz``, ``mask.npz``, ``bad.json``) stop
    training, so they are errors here; what it drops and warns about (a subject
    without a mask, photos without a usable canvas) are warnings. Training
    decodes canvases only when it draws them, so every kept canvas is decoded
    here too: a truncated one is skipped by training, one warning each.
    """
    from tqdm import tqdm

    from ..io import load_image
    from .outpaint import read_outpaint_set

    canvases: set[Path] = set()
    for split in splits:
        try:
            data = read_outpaint_set(outpaint_dir, split)
        except DataError as e:  # names its file and entry
            where, _, message = str(e).partition(": ")
            report.add("error", where, message)
            return  # the same file stops every split
        except FileNotFoundError as e:
            report.add("error", str(outpaint_dir), str(e))
            return
        for warning in data.warnings:
            report.add("warning", f"{split}.json", f"train: {warning}")
        if data.dropped_photos:
            pid, why = next(iter(data.dropped_photos.items()))
            report.add(
                "warning",
                f"{split}.json",
                f"{len(data.dropped_photos)} photos have no usable canvas, so no examples (e.g. id {pid!r}: {why})",
            )
        canvases.update(data.image_dir / v.img_file for group in data.groups.values() for v in group)
    for path in tqdm(sorted(canvases), desc="dataset check: canvases", unit="img", disable=not progress):
        try:
            load_image(path, min_side=64)  # DCT-reduced: still reads every byte of the file
        except ImageReadError as e:
            report.add("warning", str(path), f"{str(e).removeprefix(f'{path}: ')}; train skips it")


def _check_photos(report: CheckReport, images_dir: Path, all_ids: dict[str, list[str]]) -> None:
    """Every id needs a readable photo: ``img<ID>.<ext>``, or canvases ``img<ID>_X_Y_W_H.<ext>``."""
    from ..engine.runner import parse_outpaint_name

    files: dict[str, list[Path]] = {}
    for p in list_images(images_dir):
        parsed = parse_outpaint_name(p.name)
        if parsed is not None:
            files.setdefault(parsed[0], []).append(p)
        if p.stem.startswith("img"):
            files.setdefault(p.stem[3:], []).append(p)
    for split, ids in all_ids.items():
        missing = [pid for pid in ids if pid not in files]
        for pid in missing[:20]:
            report.add("error", f"{split}.json (id {pid!r})", f"photo {images_dir / photo_file(pid)} missing")
        if len(missing) > 20:
            report.add(
                "error",
                f"{split}.json",
                f"... and {len(missing) - 20} more photos missing ({len(missing)} of {len(ids)})",
            )
        unreadable = []
        for pid in ids:
            for path in files.get(pid, []):
                try:
                    image_size(path)
                except ImageReadError as e:
                    unreadable.append((pid, str(e)))
        for pid, msg in unreadable[:20]:
            report.add("error", f"{split}.json (id {pid!r})", msg)
        if len(unreadable) > 20:
            report.add("error", f"{split}.json", f"... and {len(unreadable) - 20} more unreadable photos")


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
