"""Reading an outpainted training set: split files, canvas file names, subjects.

Layout (written by the data engine, or by ``gencrop data from-crops`` for
real-context data)::

    data/<name>/train.json, val.json, test.json   [{"id", "subject_xywh"}]  (0-1 of the photo)
    data/<name>/outpaint/images/img<ID>_X_Y_W_H.jpg  canvases; X,Y,W,H = where the photo sits
    data/<name>/outpaint/bad.json                 optional: file names the quality filter rejected
    data/<name>/outpaint/detect.json.gz, mask.npz  instance segmentation of the canvases

Each canvas is one *variation* of a photo. Its subject is the photo's
annotated subject mapped into the canvas and matched to a detection, so that
the subject mask follows what the segmenter actually found. The matching and
the heuristic filter follow the paper's reader exactly (strict comparisons,
first detection wins ties): they decide which examples exist at all, so they
are checked against golden vectors.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence


from ..geometry import Box
from ..io import ImageReadError, image_size, list_images, read_json
from ..validation import DataError, check_disjoint_splits, read_detections, read_masks, read_split

__all__ = [
    "SUBJECT_MATCH_IOU",
    "HALLUCINATION_IOU",
    "Variation",
    "parse_outpaint_name",
    "load_outpaint_split",
    "group_variations",
    "OutpaintSet",
    "read_bad_list",
    "read_split_files",
    "read_outpaint_set",
]

# A detection is the subject when its IoU with the mapped annotation is strictly above this.
SUBJECT_MATCH_IOU = 0.25
# A detection overlapping the original frame less than this was invented by the outpainter.
HALLUCINATION_IOU = 0.01
# The canvas size the paper's outpainter uses (and its reader assumes).
DEFAULT_CANVAS = (512, 512)
# X, Y, W, H of a canvas name: plain ASCII integers (int() alone would take "+5", " 5" or other digits).
_INTEGER = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class Variation:
    """One outpainted canvas of one photo, with its frame and (matched) subject in canvas pixels."""

    id: str
    img_file: str
    crop: Box  # where the original photo (the frame) sits in the canvas
    subject: Box | None  # the matched detection
    subject_mask_id: object | None  # key of its polygon in mask.npz
    subject_orig: Box | None  # the annotated subject mapped into the canvas
    width: int
    height: int

    def to_record(self) -> dict:
        """The record layout of the paper's reader (used to compare against its output)."""
        return {
            "id": self.id,
            "img_file": self.img_file,
            "crop_xywh": list(self.crop.xywh),
            "crop_score": -1,
            "subject": None
            if self.subject is None
            else {"xywh": list(self.subject.xywh), "score": -1, "payload_mask_id": self.subject_mask_id},
            "subject_orig": None if self.subject_orig is None else {"xywh": list(self.subject_orig.xywh), "score": 1.0},
            "height": self.height,
            "width": self.width,
        }


def parse_outpaint_name(name: str) -> tuple[str, int, int, int, int]:
    """``img<ID>_X_Y_W_H.<ext>`` -> ``(id, x, y, w, h)``.

    The id is everything between the ``img`` prefix and the last four
    underscores, so ids may contain underscores or start with a dash. This is
    the one parser of canvas names (the engine's ``parse_outpaint_name`` wraps it).
    """
    base = os.path.basename(name)
    stem, ext = os.path.splitext(base)
    if not stem.startswith("img") or not ext:
        raise ValueError(f"{base}: not an outpainted canvas name (img<ID>_X_Y_W_H.<ext>)")
    parts = stem[3:].rsplit("_", 4)
    if len(parts) != 5 or not parts[0]:
        raise ValueError(f"{base}: not an outpainted canvas name (img<ID>_X_Y_W_H.<ext>)")
    if not all(_INTEGER.fullmatch(p) for p in parts[1:]):
        raise ValueError(f"{base}: frame X_Y_W_H must be integers")
    x, y, w, h = (int(p) for p in parts[1:])
    if w <= 0 or h <= 0:
        raise ValueError(f"{base}: frame W and H must be positive")
    return parts[0], x, y, w, h


def _subject_in_canvas(subject_xywh: Sequence[float], crop: Box) -> Box:
    sx, sy, sw, sh = (float(v) for v in subject_xywh)
    return Box(crop.x + sx * crop.w, crop.y + sy * crop.h, sw * crop.w, sh * crop.h)


def load_outpaint_split(
    split_data: Iterable[dict],
    img_files: Iterable[str],
    det_dict: dict | None,
    filter_with_heuristics: bool = True,
    canvas_size: Callable[[str], tuple[int, int]] | None = None,
) -> Iterator[Variation]:
    """Yield the usable variations, in the order of ``img_files``.

    ``det_dict`` maps a file stem to detections ``[{"xywh", "mask_id", ...}]``
    in canvas pixels. A variation whose photo has an annotated subject is kept
    only when a detection matches it (IoU strictly > 0.25, first wins ties);
    with ``filter_with_heuristics`` it is also dropped when an invented
    detection (IoU with the frame < 0.01) is larger than a quarter of the
    subject, or when any detection is more than twice the matched one: both
    signs of an outpainting that added a competing subject. Photos without a
    subject annotation are kept with ``subject=None``. ``canvas_size(file)``
    gives ``(width, height)``; the paper's canvases are 512 x 512.
    """
    subjects = {d["id"]: d.get("subject_xywh") for d in split_data}
    size_of = canvas_size or (lambda _f: DEFAULT_CANVAS)
    for img_file in img_files:
        pid, x, y, w, h = parse_outpaint_name(img_file)
        if pid not in subjects:
            continue
        crop = Box(x, y, w, h)
        subject_xywh = subjects[pid]
        width, height = size_of(img_file)
        if subject_xywh is None:
            yield Variation(pid, img_file, crop, None, None, None, width, height)
            continue
        orig = _subject_in_canvas(subject_xywh, crop)
        dets = (det_dict or {}).get(os.path.splitext(img_file)[0], [])
        boxes = [Box.from_xywh(d["xywh"]) for d in dets]
        best, best_iou = None, SUBJECT_MATCH_IOU
        for i, b in enumerate(boxes):
            v = b.iou(orig)
            if v > best_iou:
                best, best_iou = i, v
        if best is None:
            continue
        subject = boxes[best]
        if filter_with_heuristics:
            invented = [b.area for b in boxes if b.iou(crop) < HALLUCINATION_IOU]
            if invented and max(invented) > 0.25 * orig.area:
                continue
            if max(b.area for b in boxes) > 2 * subject.area:
                continue
        yield Variation(pid, img_file, crop, subject, dets[best].get("mask_id"), orig, width, height)


def group_variations(variations: Iterable[Variation]) -> "OrderedDict[str, list[Variation]]":
    """Photo id -> its variations, in first-seen order (an epoch draws one per photo)."""
    groups: OrderedDict[str, list[Variation]] = OrderedDict()
    for v in variations:
        groups.setdefault(v.id, []).append(v)
    return groups


@dataclass
class OutpaintSet:
    """The usable variations of one split of a dataset folder, with what is needed to load them."""

    image_dir: Path
    groups: "OrderedDict[str, list[Variation]]"
    polygons: dict  # mask_id (as stored in detect.json) -> N x 2 float32 polygon
    stats: dict  # counts of files read and dropped, by reason
    warnings: list[str] = field(default_factory=list)  # one line each: skipped canvases, missing masks
    dropped_photos: dict[str, str] = field(default_factory=dict)  # split ids without a usable canvas -> why

    @property
    def num_photos(self) -> int:
        return len(self.groups)

    @property
    def num_variations(self) -> int:
        return sum(len(v) for v in self.groups.values())

    def summary(self) -> str:
        s = self.stats
        return (
            f"{self.num_photos} photos, {self.num_variations} variations kept of {s['files']} canvases "
            f"(dropped: {s['not_in_split']} not in split, {s['bad']} bad, {s['unreadable']} unreadable, "
            f"{s['no_subject_match']} no subject match, {s['heuristic']} heuristic filter)"
        )


def read_bad_list(path: Path) -> set[str]:
    """``bad.json``: the canvas file names the quality filter rejected (a JSON list of names)."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(f"must be a JSON list of file names; got {type(data).__name__}", path)
    for i, name in enumerate(data):
        if not isinstance(name, str):
            raise DataError(f"must be a file name; got {type(name).__name__} {name!r:.60}", path, i)
    return {os.path.basename(f) for f in data}


def read_split_files(dataset_dir: str | os.PathLike, splits: Sequence[str]) -> dict[str, list[dict]]:
    """The checked entries of the given split files that exist; a photo in two of them is an error."""
    dataset_dir = Path(dataset_dir)
    found = {s: dataset_dir / f"{s}.json" for s in splits if (dataset_dir / f"{s}.json").is_file()}
    entries = {s: read_split(p) for s, p in found.items()}
    check_disjoint_splits({found[s]: e for s, e in entries.items()})
    return entries


def read_outpaint_set(
    outpaint_dir: str | os.PathLike,
    split: str = "train",
    *,
    bad_filter: bool = True,
    heuristic_filter: bool = True,
    canvas_size: tuple[int, int] | None = None,
) -> OutpaintSet:
    """Read ``<dataset>/<split>.json`` and the canvases of ``<dataset>/outpaint``.

    ``canvas_size`` fixes the size of every canvas (the outpainter's 512 x 512);
    by default each file's header is read, which real-context canvases (whole
    photos of any size) need. A malformed split, detection, mask or bad-list
    file raises :class:`~gencrop.validation.DataError`; a canvas whose header
    cannot be read is dropped, counted as unreadable and listed in ``warnings``.
    """
    outpaint_dir = Path(outpaint_dir)
    image_dir = outpaint_dir / "images"
    split_file = outpaint_dir.parent / f"{split}.json"
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir}: no such folder (expected <dataset>/outpaint/images)")
    if not split_file.is_file():
        raise FileNotFoundError(f"{split_file}: no such split file")
    split_data = read_split(split_file)
    files = [p.name for p in list_images(image_dir)]
    files = [f for f in files if f.startswith("img")]
    bad: set[str] = set()
    bad_file = outpaint_dir / "bad.json"
    if bad_filter and bad_file.is_file():
        bad = read_bad_list(bad_file)
    det_file = outpaint_dir / "detect.json.gz"
    if not det_file.is_file() and (outpaint_dir / "detect.json").is_file():
        det_file = outpaint_dir / "detect.json"
    det_dict = read_detections(det_file) if det_file.is_file() else None

    ids = {d["id"] for d in split_data}
    in_split = []
    for f in files:
        try:
            pid = parse_outpaint_name(f)[0]
        except ValueError:
            continue
        if pid in ids:
            in_split.append(f)
    good = [f for f in in_split if f not in bad]
    if det_dict is None and any(d.get("subject_xywh") is not None for d in split_data):
        raise FileNotFoundError(
            f"{outpaint_dir}/detect.json.gz is missing but the split has subjects (run `gencrop segment` first)"
        )

    # Canvas sizes up front: one unreadable canvas is dropped and reported, never fatal.
    warnings: list[str] = []
    sizes: dict[str, tuple[int, int]] = {}
    unreadable: list[str] = []
    for f in good:
        try:
            sizes[f] = canvas_size if canvas_size else image_size(image_dir / f)
        except ImageReadError as e:
            unreadable.append(str(e))
    readable = [f for f in good if f in sizes]
    if unreadable:
        warnings.append(f"{len(unreadable)} unreadable canvases skipped, e.g. {unreadable[0]}")

    def run(heuristics: bool) -> list[Variation]:
        return list(load_outpaint_split(split_data, readable, det_dict, heuristics, sizes.__getitem__))

    kept = run(heuristic_filter)
    if heuristic_filter:
        matched = len(list(load_outpaint_split(split_data, readable, det_dict, False, lambda _f: (0, 0))))
    else:
        matched = len(kept)
    stats = {
        "files": len(files),
        "not_in_split": len(files) - len(in_split),
        "bad": len(in_split) - len(good),
        "unreadable": len(unreadable),
        "no_subject_match": len(readable) - matched,
        "heuristic": matched - len(kept),
        "kept": len(kept),
    }
    polygons = {}
    mask_file = outpaint_dir / "mask.npz"
    wanted = {str(v.subject_mask_id) for v in kept if v.subject_mask_id is not None}
    if wanted and mask_file.is_file():
        polygons = read_masks(mask_file, wanted)
    with_subject = [v for v in kept if v.subject is not None]
    boxed = [v for v in with_subject if v.subject_mask_id is None or str(v.subject_mask_id) not in polygons]
    if boxed:
        why = f"{mask_file} missing" if not mask_file.is_file() else f"no polygon in {mask_file}"
        warnings.append(
            f"{len(boxed)} of {len(with_subject)} subjects have no mask ({why}, e.g. {boxed[0].img_file}); "
            "their detection box is used as the mask"
        )
    groups = group_variations(kept)
    has_canvas = {parse_outpaint_name(f)[0] for f in in_split}
    dropped = {
        d["id"]: (
            "every canvas was dropped (bad, unreadable, no subject match or heuristic filter)"
            if d["id"] in has_canvas
            else f"no canvas img{d['id']}_X_Y_W_H.* in {image_dir}"
        )
        for d in split_data
        if d["id"] not in groups
    }
    return OutpaintSet(image_dir, groups, polygons, stats, warnings, dropped)
