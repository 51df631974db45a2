"""Real-context training data from photos that carry an expert crop.

A photo with an annotated crop is an "outpainting" whose surroundings are
real: the crop is the professional frame, the full photo is the canvas. This
module writes such photos in the training layout read by
:mod:`gencrop.data.outpaint`::

    OUT/train.json, val.json, test.json          [{"id", "subject_xywh"}]  (0-1 of the FRAME)
    OUT/outpaint/images/img<ID>_X_Y_W_H.<ext>    the full photo (a symlink, or a copy)
    OUT/outpaint/detect.json.gz, mask.npz        detections of the full photo (segment format)

The subject is chosen inside the frame by the class-agnostic subject finder
(:mod:`gencrop.subject`). It is always the first detection of its photo in
``detect.json.gz`` (a saliency subject is written as class ``"salient"``),
and its box in the split file is that detection clipped to the frame, so the
training reader's matching (highest IoU > 0.25) finds it: this is checked for
every photo with the reader's own function.

Work is checkpointed in the segment stage's part files; the split files and
the merged ``detect.json.gz``/``mask.npz`` are written at the end, so a killed
run resumes where it stopped.
"""

from __future__ import annotations

import os
import random
import shutil
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Sequence

from ..engine.runner import MAX_ASPECT, MIN_SIDE, Summary, outpaint_name, progress
from ..engine.segment import DETECT_FILE, PARTS_DIR, _record, merge_parts, read_segmentation
from ..geometry import Box
from ..io import ImageReadError, atomic_path, load_image, read_json, write_json
from ..validation import DataError, add_crop, box_problem, outside_photo, read_split
from .outpaint import load_outpaint_split

__all__ = ["read_crop_annotations", "split_ids", "from_crops", "SPLITS"]

SPLITS = ("train", "val", "test")


def read_crop_annotations(path: str | os.PathLike) -> tuple[dict[str, Box], list[tuple[str, str]]]:
    """``{file name: crop box}`` from FCDB's list or a plain ``{file: [x, y, w, h]}`` map.

    FCDB: ``[{"url": ".../name.jpg", "crop": [x, y, w, h], ...}]`` (the file
    name is the last component of the url). Returns the crops and the
    entries that could not be used, with one-line reasons; one photo with two
    different crops is a :class:`~gencrop.validation.DataError` naming both entries.
    """
    data = read_json(path)
    bad: list[tuple[str, str]] = []
    if isinstance(data, dict):
        items = [(name, crop, name) for name, crop in data.items()]
    elif isinstance(data, list):
        items = []
        for i, entry in enumerate(data):
            where = f"{path} entry {i}"
            if not isinstance(entry, dict):
                bad.append((where, f'must be an object with "url" and "crop"; got {type(entry).__name__}'))
                continue
            raw = entry.get("url") or entry.get("file") or entry.get("name")
            name = str(raw).rstrip("/").split("/")[-1] if isinstance(raw, str) else ""
            if not name:
                bad.append((where, 'no "url" (or "file") naming the photo'))
            elif "crop" not in entry:
                bad.append((f"{name} ({where})", 'no "crop"'))
            else:
                items.append((name, entry["crop"], i))
    else:
        raise DataError(
            f'expected a list of {{"url", "crop"}} or a {{file: [x, y, w, h]}} map; got {type(data).__name__}', path
        )
    crops: dict[str, Box] = {}
    first_entry: dict[str, int | str] = {}
    for name, crop, entry in items:
        msg = box_problem(crop, "crop")
        if msg:
            bad.append((name, msg))
            continue
        box = Box.from_xywh(crop)
        if box.is_empty():
            bad.append((name, f"empty crop {list(box.xywh)}"))
        else:
            add_crop(crops, first_entry, name, box, path, entry)
    return crops, bad


def split_ids(ids: Sequence[str], split: str = "train", val_fraction: float = 0.0, seed: int = 0) -> dict[str, str]:
    """``{id: split}``: all in ``split``; from ``train``, a seeded ``val_fraction`` goes to ``val``.

    Depends only on the set of ids and the seed, so a resumed run (or one in
    which some photos failed) assigns every photo the same split.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1); got {val_fraction}")
    out = {i: split for i in ids}
    if split == "train" and val_fraction > 0:
        order = sorted(set(ids))
        random.Random(seed).shuffle(order)
        for i in order[: int(round(len(order) * val_fraction))]:
            out[i] = "val"
    return out


def _link_or_copy(src: Path, dst: Path, copy: bool) -> None:
    """Place the canvas atomically: a symlink to the absolute photo path, or a copy."""
    if dst.is_symlink() or dst.exists():
        return
    with atomic_path(dst) as tmp:
        tmp.unlink()
        if copy:
            shutil.copyfile(src, tmp)
        else:
            os.symlink(src.resolve(), tmp)


def _relative(box: Box, frame: Box) -> list[float]:
    b = box.intersect(frame)
    return [(b.x - frame.x) / frame.w, (b.y - frame.y) / frame.h, b.w / frame.w, b.h / frame.h]


def _photo_records(
    subject, detections, frame: Box, keep_all: bool, stem: str, pid: str, size: tuple[int, int]
) -> tuple[list[dict], list[float]]:
    """Detection records (subject first) and the subject relative to the frame, checked with the reader."""
    subj_det = subject.to_detection()
    others = [d for d in detections if d is not subj_det and not (d.box == subj_det.box and d.cls == subj_det.cls)]
    dets = [subj_det] + (others if keep_all else [])
    rel = _relative(subject.box, frame)
    # Another detection that overlaps the (clipped) subject better than the subject itself
    # would be matched by the reader: drop such near-duplicates.
    for _ in range(len(dets)):
        recs = [dict(_record(d), mask_id=i) for i, d in enumerate(dets)]
        split = [{"id": pid, "subject_xywh": rel}]
        fname = stem + ".jpg"
        hit = list(load_outpaint_split(split, [fname], {stem: recs}, False, lambda _f: size))
        if hit and hit[0].subject_mask_id == 0:
            break
        if not hit:
            raise ValueError("the subject does not overlap its own frame enough to be matched")
        dets.pop(hit[0].subject_mask_id)
    return [_record(d) for d in dets], rel


def _read_progress(outpaint: Path) -> tuple[set[str], dict[str, list[float]]]:
    """Canvas stems already done (merged or in part files) and the subjects waiting in the parts."""
    detect, _ = read_segmentation(outpaint)
    done, subjects = set(detect), {}
    parts = outpaint / PARTS_DIR
    if parts.is_dir():
        for path in sorted(parts.glob("*.json.gz")):
            try:
                part = read_json(path)
            except FileNotFoundError:  # merged and removed meanwhile
                continue
            done |= set(part.get("images", {}))
            subjects.update(part.get("subjects", {}))
    return done, subjects


def _load_photo(path: Path, draft: int):
    """Reduced-size upright RGB decode and the full upright size; one-line errors for bad photos."""
    img, size = load_image(path, min_side=draft)
    if min(size) < MIN_SIDE:
        raise ImageReadError(f"too small ({size[0]}x{size[1]} px; need at least {MIN_SIDE} px a side)")
    if max(size) / min(size) > MAX_ASPECT:
        raise ImageReadError(f"extreme aspect ratio ({size[0]}x{size[1]} px; at most {MAX_ASPECT:g}:1)")
    return img, size


def from_crops(
    annotations: str | os.PathLike,
    img_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    split: str = "train",
    val_fraction: float = 0.1,
    seed: int = 0,
    cls: str = "any",
    finder=None,
    all_detections: bool = True,
    copy: bool = False,
    flush_every: int = 100,
    quiet: bool = False,
) -> Summary:
    """Write (or complete) the training layout for the annotated photos of ``img_dir``.

    ``finder`` is a :class:`~gencrop.subject.SubjectFinder` (default: the
    process-wide ``detector`` finder). With ``all_detections`` every detection of the photo
    (of class ``cls``) follows the subject, as ``gencrop segment --cls any``
    would write them; the training reader's heuristic filter may then drop
    photos whose frame leaves out a large object, so the summary counts those.
    """
    from ..subjects import SubjectNotFound, get_finder

    img_dir, out_dir = Path(img_dir), Path(out_dir)
    if not img_dir.is_dir():
        raise FileNotFoundError(f"{img_dir}: no such folder")
    outpaint = out_dir / "outpaint"
    summary = Summary("from-crops", unit="photo")
    crops, bad = read_crop_annotations(annotations)
    for name, reason in bad:
        summary.fail(name, reason)
    ids = {name: Path(name).stem for name in crops}
    splits = split_ids(sorted(ids.values()), split, val_fraction, seed)

    # The frame is the crop in whole pixels, as the canvas name records it.
    frames = {n: Box(*(int(round(v)) for v in c.xywh)) for n, c in crops.items()}
    names = {n: outpaint_name(ids[n], frames[n], Path(n).suffix.lower() or ".jpg") for n in crops}
    done, _ = _read_progress(outpaint)
    todo, missing = [], []
    for n in crops:
        if Path(names[n]).stem in done:
            summary.skip(n)
        elif not (img_dir / n).is_file():
            missing.append(n)
        else:
            todo.append(n)
    if missing:
        # Annotation files often cover more photos than a folder holds (FCDB's
        # copy here leaves out the human-centric ones): a count, not failures.
        if len(missing) == len(crops):
            raise FileNotFoundError(f"none of the {len(crops)} annotated photos is in {img_dir}")
        summary.notes.append(f"{len(missing)} annotated photos are not in {img_dir} (e.g. {missing[0]})")

    finder = finder or get_finder("detector")
    if todo:
        # Load the models before the clock starts: the per-photo time is what scales.
        finder.load()
    results: dict[str, list] = {}
    part_subjects: dict[str, list[float]] = {}
    sources: Counter = Counter()
    seconds = 0.0

    def flush():
        if results:
            write_json(
                outpaint / PARTS_DIR / f"from-crops-{uuid.uuid4().hex[:12]}.json.gz",
                {"images": results, "subjects": part_subjects, "failed": {}},
                indent=None,
            )
            results.clear()
            part_subjects.clear()

    with progress(len(todo), "from-crops", quiet, unit="photo") as bar:
        for k, name in enumerate(todo):
            frame, stem, pid = frames[name], Path(names[name]).stem, ids[name]
            src = img_dir / name
            t0 = time.perf_counter()
            try:
                img, size = _load_photo(src, finder.det_size)
                outside = outside_photo(frame, *size)
                if outside:
                    raise ValueError(outside)
                inside = frame.clamp(*size)
                dets = finder.detector.seg([img], sizes=[size])[0] if finder.detector is not None else []
                dets = [d for d in dets if cls == "any" or d.cls == cls]
                subject = finder.find(img, size, cls, frame=inside, detections=dets)
                recs, rel = _photo_records(subject, dets, frame, all_detections, stem, pid, size)
                _link_or_copy(src, outpaint / "images" / names[name], copy)
            except (ImageReadError, ValueError, OSError, SubjectNotFound) as e:
                summary.fail(name, str(e))
            else:
                results[stem] = recs
                part_subjects[pid] = rel
                sources[subject.source] += 1
                summary.ok(name)
            seconds += time.perf_counter() - t0
            bar.update(1)
            if (k + 1) % flush_every == 0:
                flush()
    flush()

    if todo:
        summary.notes.append(
            f"{seconds / len(todo):.3f} s per photo (decode, detection, subject); "
            f"subjects: {sources['detection']} detected, {sources['saliency']} salient"
        )
    _finish(out_dir, outpaint, [Path(names[n]).stem for n in crops], splits, summary)
    return summary


def _finish(out_dir: Path, outpaint: Path, stems: list[str], splits: dict[str, str], summary: Summary) -> None:
    """Write the split files (entries of earlier runs kept), then merge the parts into detect/mask.

    Split files first: the parts are removed by the merge, and they are where
    new subjects wait until the split files hold them.
    """
    _, subjects = _read_progress(outpaint)
    entries: dict[str, tuple[str, dict]] = {}
    for s in SPLITS:
        p = out_dir / f"{s}.json"
        if p.is_file():
            for d in read_split(p):
                entries[d["id"]] = (s, d)
    for pid, rel in subjects.items():
        entries[pid] = (splits.get(pid, entries.get(pid, ("train",))[0]), {"id": pid, "subject_xywh": rel})
    by_split: dict[str, list] = {s: [] for s in SPLITS}
    for pid in sorted(entries):
        s, d = entries[pid]
        by_split[s].append(d)
    for s in SPLITS:
        write_json(out_dir / f"{s}.json", by_split[s], indent=None)
    done, _ = _read_progress(outpaint)
    if not merge_parts(outpaint, [st for st in stems if st in done]) and (outpaint / PARTS_DIR).is_dir():
        summary.notes.append("detections not merged yet (parts kept for the next run)")
    summary.notes.append("split files: " + ", ".join(f"{len(by_split[s])} {s}" for s in SPLITS) + f" in {out_dir}")
    if (outpaint / DETECT_FILE).exists():
        summary.notes.append(_reader_check(out_dir))


def _reader_check(out_dir: Path) -> str:
    """What the training reader makes of the result (matched subjects, heuristic filter)."""
    from .outpaint import read_outpaint_set

    kept = heuristic = unmatched = 0
    for s in SPLITS:
        try:
            data = read_outpaint_set(out_dir / "outpaint", s, heuristic_filter=True)
        except (FileNotFoundError, ValueError):
            continue
        kept += data.num_photos
        heuristic += data.stats["heuristic"]
        unmatched += data.stats["no_subject_match"]
    return (
        f"training reader: {kept} photos kept, {heuristic} dropped by its heuristic filter "
        f"(--no-heuristic-filter keeps them), {unmatched} without a matched subject"
    )
