"""The published cropping benchmarks, read from their folders exactly as they are distributed.

Every loader returns a :class:`Benchmark`: a list of :class:`BenchmarkPhoto`
with ground-truth crops and the subject in *photo pixels*, plus the photos
the annotations name but the folder lacks (reported, never silently dropped).

Layouts (``ROOT`` is ``--data-root``; the human-centric annotation files are
those of the Human-Centric Image Cropping release):

* ``ROOT/FCDB/{data/*.jpg, image_crop.json, human_bboxes.json, data_split.json}``
  (the official ``cropping_testing_set.json`` + ``images/`` layout is read too)
* ``ROOT/FLMS/{image/*.jpg, image_crop.json, human_bboxes.json}``
* ``ROOT/GAICD/{images/*.jpg, image_crop.json, human_bboxes.json, human_data_split.json, original_data_split.json}``
* ``ROOT/CPCDataset/{images/*.jpg, image_crop.json, human_bboxes.json}``
* ``ROOT/SACD/{images-sym/, masks/, test.json, annotations/}``
* Unsplash: a split folder with ``testeval_sha256.json.gz`` and ``test.json``
  (from ``gencrop unsplash prepare``) and a folder of ``img<ID>.jpg``.

The subject of a human-centric photo is its annotated person box; its mask is
the polygon of the detection (``detect.json.gz`` + ``mask.npz`` beside the
annotations, from ``gencrop segment``) that overlaps the box most, or the box
itself when no detection overlaps it.
"""

from __future__ import annotations

import base64
import io as _io
import json
import math
import os
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..geometry import Box
from ..io import ImageReadError, image_size, polygon_to_mask, read_json
from ..validation import DataError, add_crop, annotation_box, outside_photo, read_detections, read_masks

__all__ = [
    "BENCHMARKS",
    "BenchmarkPhoto",
    "Benchmark",
    "BenchmarkError",
    "load_benchmark",
    "load_fcdb",
    "load_flms",
    "load_gaicd",
    "load_cpc",
    "load_sacd",
    "load_unsplash",
    "load_own_test",
    "detection_files",
    "attach_detection_masks",
    "segment_command",
    "unsegmented",
]

BENCHMARKS = ("fcdb", "flms", "gaicd", "cpc", "flms+fcdb", "sacd", "unsplash")

DETECT_FILE = "detect.json.gz"
MASK_FILE = "mask.npz"
# mask_source of a photo without a subject: the whole view is the subject, the mask channel is empty
WHOLE_VIEW = "none (whole view)"


class BenchmarkError(ValueError):
    """A benchmark folder is missing or malformed (the message says what to do)."""


@dataclass
class BenchmarkPhoto:
    """One scored example: a photo (or a view of a canvas), its ground truths and subject, in photo pixels."""

    name: str  # unique within the benchmark; shown in reports
    path: Path
    gts: list[Box]
    subject: Box | None = None
    mask_polygon: np.ndarray | None = None  # N x 2 photo pixels (from mask.npz)
    mask_file: Path | None = None  # a mask image of the photo (> 127 is subject)
    mask_png: bytes | None = None  # the same, as PNG bytes (Unsplash)
    view: Box | None = None  # the region of the file that is the photo (own test split)
    mask_source: str = "box"  # "detection", "file", "png" or "box"
    detections: list | None = None  # every detection of the photo, when a detector was run
    found: object | None = None  # the subject finder's Subject, when the subject was found (not given)

    def subject_mask(self, width: int, height: int, scale: float = 1.0) -> np.ndarray | None:
        """The subject as a bool ``height x width`` mask; ``None`` without a subject.

        ``scale`` draws it for a photo resized by that factor (thumbnails);
        ``width`` x ``height`` is then the resized size. A mask that comes out
        empty is replaced by the subject's box, as in training; only a photo
        without a subject (:data:`WHOLE_VIEW`) has an empty mask.
        """
        if self.mask_source == WHOLE_VIEW:
            return np.zeros((height, width), bool)
        mask = None
        if self.mask_file is not None or self.mask_png is not None:
            from PIL import Image

            src = self.mask_file if self.mask_file is not None else _io.BytesIO(self.mask_png)
            with Image.open(src) as im:
                m = im.convert("L")
                if m.size != (width, height):
                    m = m.resize((width, height), Image.NEAREST)
                mask = np.asarray(m) > 127
        elif self.subject is not None and self.mask_polygon is not None and len(self.mask_polygon) >= 3:
            offset = (-self.view.x * scale, -self.view.y * scale) if self.view is not None else (0.0, 0.0)
            mask = polygon_to_mask(self.mask_polygon, width, height, scale=scale, offset=offset)
        if self.subject is None or (mask is not None and mask.any()):
            return mask
        mask = np.zeros((height, width), bool)
        x1, y1, x2, y2 = (int(round(v * scale)) for v in self.subject.xyxy)
        mask[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = True
        return mask


@dataclass
class Benchmark:
    name: str
    folder: Path
    photos: list[BenchmarkPhoto]
    missing: list[str] = field(default_factory=list)  # annotated photos the folder lacks
    description: str = ""
    detection_dirs: list[Path] = field(default_factory=list)  # where detect.json.gz / mask.npz belong
    skipped: list[tuple[str, str]] = field(default_factory=list)  # annotated photos not scored, and why
    warnings: list[str] = field(default_factory=list)  # what else the reader noticed (one line each)

    @property
    def has_subjects(self) -> bool:
        return any(p.subject is not None for p in self.photos)


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------
def _read(path: Path, what: str, kind: type = dict):
    """An annotation file; its top level must be a ``kind`` (dict or list)."""
    if not path.is_file():
        raise BenchmarkError(f"{path}: missing ({what})")
    data = read_json(path)
    if not isinstance(data, kind):
        raise DataError(
            f"must be a JSON {'object' if kind is dict else 'list'} ({what}); got {type(data).__name__}", path
        )
    return data


def _entry(data: dict, key: str, path: Path, what: str, kind: type = list):
    """``data[key]`` of an annotation file, which must be a ``kind``."""
    if key not in data:
        raise DataError(f'no "{key}" ({what})', path)
    if not isinstance(data[key], kind):
        raise DataError(
            f'"{key}" must be a JSON {"list" if kind is list else "object"}; got {type(data[key]).__name__}', path
        )
    return data[key]


def _find_folder(data_root: Path, names: tuple[str, ...], marker: str) -> Path:
    """``data_root/<name>`` for the first name holding ``marker``, or ``data_root`` itself."""
    data_root = Path(data_root)
    for name in names:
        if (data_root / name / marker).exists():
            return data_root / name
    if (data_root / marker).exists():
        return data_root
    tried = ", ".join(str(data_root / n / marker) for n in names)
    raise BenchmarkError(f"no {names[0]} folder under {data_root} (looked for {tried})")


def _collect(folder: Path, image_dir: Path, entries, name: str, description: str) -> Benchmark:
    """Build a benchmark from ``(file, gts, subject)`` triples, splitting off absent photos."""
    if not image_dir.is_dir():
        raise BenchmarkError(f"{image_dir}: no such folder (the {name} photos)")
    present = {p.name for p in image_dir.iterdir()}
    photos, missing = [], []
    for fname, gts, subject in entries:
        if fname in present:
            photos.append(BenchmarkPhoto(fname, image_dir / fname, gts, subject))
        else:
            missing.append(fname)
    photos, skipped = _drop_impossible_crops(photos)
    return Benchmark(name, folder, photos, missing, description, detection_dirs=[folder], skipped=skipped)


def _drop_impossible_crops(photos: list[BenchmarkPhoto]) -> tuple[list[BenchmarkPhoto], list[tuple[str, str]]]:
    """Ground truths outside their photo cannot be scored: such photos are set aside with the reason.

    A photo whose header cannot be read is kept: the runner reports it as failed.
    """
    kept, skipped = [], []
    for photo in photos:
        try:
            W, H = image_size(photo.path)
        except ImageReadError:
            kept.append(photo)
            continue
        reasons = [r for r in (outside_photo(g, W, H) for g in photo.gts) if r]
        if reasons:
            skipped.append((photo.name, f"ground truth {reasons[0]}"))
        else:
            kept.append(photo)
    return kept, skipped


# ----------------------------------------------------------------------------
# the human-centric benchmarks
# ----------------------------------------------------------------------------
def load_fcdb(data_root: str | os.PathLike, all_images: bool = False) -> Benchmark:
    """FCDB: one expert crop per photo (``[x, y, w, h]``).

    Human-centric (default): the photos of ``human_bboxes.json``, train and test
    split alike, as the human-centric cropping papers evaluate. ``all_images``:
    the test split, without subjects. The official release layout
    (``cropping_testing_set.json`` + ``images/``) is accepted for ``all_images``.
    """
    root = Path(data_root)
    try:
        folder = _find_folder(root, ("FCDB", "fcdb"), "image_crop.json")
    except BenchmarkError:
        folder = _find_folder(root, ("FCDB", "fcdb"), "cropping_testing_set.json")
        return _load_fcdb_official(folder, all_images)
    crop_file, split_file = folder / "image_crop.json", folder / "data_split.json"
    crops = _read(crop_file, "FCDB crops")
    split = _read(split_file, "FCDB split")
    tests = _entry(split, "test", split_file, "FCDB split")

    def crop(n):
        return annotation_box(crops[n], "xywh", crop_file, n)

    if all_images:
        names = [n for n in tests if isinstance(n, str) and n in crops]
        entries = [(n, [crop(n)], None) for n in names]
        desc = "FCDB test split (all photos)"
    else:
        human_file = folder / "human_bboxes.json"
        humans = _read(human_file, "FCDB person boxes")
        ids = {n for n in _entry(split, "train", split_file, "FCDB split") + tests if isinstance(n, str)}
        entries = [
            (n, [crop(n)], annotation_box(humans[n], "xyxy", human_file, n, "person box"))
            for n in sorted(humans)
            if n in crops and n in ids
        ]
        desc = "FCDB human-centric (train + test)"
    return _collect(folder, folder / "data", entries, "fcdb", desc)


def _load_fcdb_official(folder: Path, all_images: bool) -> Benchmark:
    if not all_images and not (folder / "human_bboxes.json").is_file():
        raise BenchmarkError(
            f"{folder}: official FCDB layout without human_bboxes.json; "
            "use --all-images for its test split, or add the human-centric annotation files"
        )
    test_file = folder / "cropping_testing_set.json"
    tests = _read(test_file, "FCDB test annotations", list)
    crops: dict[str, Box] = {}
    first_entry: dict[str, int] = {}
    for i, d in enumerate(tests):
        if not isinstance(d, dict):
            raise DataError(f'must be an object with "url" and "crop"; got {type(d).__name__}', test_file, i)
        if not isinstance(d.get("url"), str) or not d["url"].strip("/"):
            raise DataError('no "url" naming the photo', test_file, i)
        if "crop" not in d:
            raise DataError('no "crop"', test_file, i)
        name = d["url"].rstrip("/").rsplit("/", 1)[-1]
        add_crop(crops, first_entry, name, annotation_box(d["crop"], "xywh", test_file, i), test_file, i)
    image_dir = folder / "data" if (folder / "data").is_dir() else folder / "images"
    if all_images:
        entries = [(n, [b], None) for n, b in crops.items()]
        desc = "FCDB official test set (all photos)"
    else:
        human_file = folder / "human_bboxes.json"
        humans = _read(human_file, "FCDB person boxes")
        entries = [
            (n, [crops[n]], annotation_box(humans[n], "xyxy", human_file, n, "person box"))
            for n in sorted(humans)
            if n in crops
        ]
        desc = "FCDB human-centric (official test set)"
    return _collect(folder, image_dir, entries, "fcdb", desc)


def load_flms(data_root: str | os.PathLike, all_images: bool = False) -> Benchmark:
    """FLMS: about ten expert crops per photo (``[x1, y1, x2, y2]``); the best-matching one is scored."""
    folder = _find_folder(Path(data_root), ("FLMS", "flms"), "image_crop.json")
    crop_file, human_file = folder / "image_crop.json", folder / "human_bboxes.json"
    crops = _read(crop_file, "FLMS crops")

    def gts(n):
        boxes = crops[n]
        if not isinstance(boxes, list) or not boxes:
            raise DataError(f"must be a non-empty list of [x1, y1, x2, y2] crops; got {boxes!r:.60}", crop_file, n)
        return [annotation_box(b, "xyxy", crop_file, n) for b in boxes]

    if all_images:
        entries = [(n, gts(n), None) for n in sorted(crops)]
        desc = "FLMS (all photos)"
    else:
        humans = _read(human_file, "FLMS person boxes")
        entries = [
            (n, gts(n), annotation_box(humans[n], "xyxy", human_file, n, "person box"))
            for n in sorted(humans)
            if n in crops
        ]
        desc = "FLMS human-centric"
    return _collect(folder, folder / "image", entries, "flms", desc)


def load_gaicd(data_root: str | os.PathLike, all_images: bool = False) -> Benchmark:
    """GAICD test split; every annotated crop (sorted by score) is a ground truth."""
    folder = _find_folder(Path(data_root), ("GAICD", "gaicd"), "image_crop.json")
    crop_file, human_file = folder / "image_crop.json", folder / "human_bboxes.json"
    crops = _read(crop_file, "GAICD crops")
    split_file = folder / ("original_data_split.json" if all_images else "human_data_split.json")
    split = _read(split_file, "GAICD split")
    if all_images:
        humans = {}
        desc = "GAICD test split (all photos)"
    else:
        humans = _read(human_file, "GAICD person boxes")
        desc = "GAICD human-centric test split"
    entries = []
    for n in _entry(split, "test", split_file, "GAICD split"):
        if not isinstance(n, str) or n not in crops or (not all_images and n not in humans):
            continue
        rec = crops[n]
        boxes = rec.get("bbox") if isinstance(rec, dict) else None
        if not isinstance(boxes, list) or not boxes:
            raise DataError('must be an object with a non-empty "bbox" list of [x1, y1, x2, y2]', crop_file, n)
        gts = [annotation_box(b, "xyxy", crop_file, n) for b in boxes]
        subject = annotation_box(humans[n], "xyxy", human_file, n, "person box") if n in humans else None
        entries.append((n, gts, subject))
    return _collect(folder, folder / "images", entries, "gaicd", desc)


def load_cpc(data_root: str | os.PathLike, all_images: bool = False) -> Benchmark:
    """CPC: the first (best-ranked) crop of each photo is the ground truth."""
    folder = _find_folder(Path(data_root), ("CPCDataset", "CPC", "cpc"), "image_crop.json")
    crop_file, human_file = folder / "image_crop.json", folder / "human_bboxes.json"
    crops = _read(crop_file, "CPC crops")

    def first(n):
        d = crops[n]
        boxes = d.get("bboxes", d.get("bbox")) if isinstance(d, dict) else d
        if not isinstance(boxes, list) or not boxes:
            raise DataError("must hold a non-empty list of [x1, y1, x2, y2] crops", crop_file, n)
        return [annotation_box(boxes[0], "xyxy", crop_file, n)]

    def person(n):
        d = humans[n]
        return annotation_box(d.get("bbox") if isinstance(d, dict) else d, "xyxy", human_file, n, "person box")

    if all_images:
        entries = [(n, first(n), None) for n in sorted(crops)]
        desc = "CPC (all photos)"
    else:
        humans = _read(human_file, "CPC person boxes")
        entries = [(n, first(n), person(n)) for n in sorted(humans) if n in crops]
        desc = "CPC human-centric"
    return _collect(folder, folder / "images", entries, "cpc", desc)


def load_flms_fcdb(data_root: str | os.PathLike, all_images: bool = False) -> Benchmark:
    """FLMS and FCDB together, as one figure (photo names prefixed by their benchmark)."""
    parts = [load_flms(data_root, all_images), load_fcdb(data_root, all_images)]
    photos, missing, skipped = [], [], []
    for b in parts:
        prefix = b.name.upper() + "/"
        for p in b.photos:
            p.name = prefix + p.name
            photos.append(p)
        missing += [prefix + m for m in b.missing]
        skipped += [(prefix + n, why) for n, why in b.skipped]
    return Benchmark(
        "flms+fcdb",
        Path(data_root),
        photos,
        missing,
        " + ".join(b.description for b in parts),
        detection_dirs=[d for b in parts for d in b.detection_dirs],
        skipped=skipped,
    )


# ----------------------------------------------------------------------------
# SACD
# ----------------------------------------------------------------------------
def sacd_example_name(annotation_path: str) -> str:
    """``annotations/<photo>_<k>.json`` -> ``<photo>_<k>.jpg``, the example's link name."""
    return annotation_path.split("/", 1)[-1].rsplit(".", 1)[0] + ".jpg"


def load_sacd(data_root: str | os.PathLike) -> Benchmark:
    """SACD test split: one example per (photo, subject); ``best_box`` and every ``crop_box`` are ground truths.

    The subject is ``mask_box`` (already ``[x, y, w, h]``, stored as a JSON
    string) and its mask image ``masks/<example>.jpg``. Photos are read through
    ``images-sym/`` (``gencrop sacd-links`` makes it).
    """
    folder = _find_folder(Path(data_root), ("SACD", "sacd"), "test.json")
    split_file = folder / "test.json"
    split = _read(split_file, "SACD test split")
    image_dir = folder / "images-sym"
    if not image_dir.is_dir():
        raise BenchmarkError(f"{image_dir}: missing; make it with `gencrop sacd-links {folder}`")
    photos, missing = [], []
    for i, annot in enumerate(_entry(split, "jsons", split_file, "SACD test split")):
        if not isinstance(annot, str):
            raise DataError(f"jsons entry {i} must be a file name; got {annot!r:.60}", split_file)
        annot_file = folder / annot
        data = _read(annot_file, "SACD annotation")
        name = sacd_example_name(annot)
        subject = _entry(data, "mask_box", annot_file, "SACD annotation", (str, list))
        if isinstance(subject, str):
            try:
                subject = json.loads(subject)
            except ValueError:
                raise DataError(f"mask_box is not a JSON [x, y, w, h]: {subject!r:.60}", annot_file) from None
        best = _entry(data, "best_box", annot_file, "SACD annotation")
        if not best:
            raise DataError("best_box is empty", annot_file)
        gts = [annotation_box(b, "xyxy", annot_file, f"best_box {k}") for k, b in enumerate(best[:1])]
        gts += [
            annotation_box(b, "xyxy", annot_file, f"crop_box {k}")
            for k, b in enumerate(_entry(data, "crop_box", annot_file, "SACD annotation"))
        ]
        subject = annotation_box(subject, "xywh", annot_file, "mask_box", "subject")
        path = image_dir / name
        if not path.exists():
            missing.append(name)
            continue
        mask = folder / "masks" / (os.path.splitext(name)[0] + ".jpg")
        photo = BenchmarkPhoto(name, path, gts, subject)
        if mask.is_file():
            photo.mask_file, photo.mask_source = mask, "file"
        photos.append(photo)
    photos, skipped = _drop_impossible_crops(photos)
    return Benchmark("sacd", folder, photos, missing, "SACD test split", skipped=skipped)


# ----------------------------------------------------------------------------
# Unsplash
# ----------------------------------------------------------------------------
def load_unsplash(dataset_dir: str | os.PathLike, images_dir: str | os.PathLike) -> Benchmark:
    """The paper's Unsplash test set of one category; boxes are stored in 0-1 of the photo.

    ``dataset_dir`` holds ``testeval_sha256.json.gz`` and the ``test.json`` that
    ``gencrop unsplash prepare`` writes (it maps each hash to a photo id);
    ``images_dir`` holds ``img<ID>.jpg``. Every listed crop is a ground truth;
    the subject mask is the PNG stored with the labels.
    """
    dataset_dir, images_dir = Path(dataset_dir), Path(images_dir)
    label_file = dataset_dir / "testeval_sha256.json.gz"
    labels = _read(label_file, "Unsplash test labels")
    split_file = dataset_dir / "test.json"
    if not split_file.is_file():
        raise BenchmarkError(
            f"{split_file}: missing; make it with `gencrop unsplash prepare HASH_DIR UNSPLASH_DATASET_DIR -o ...`"
        )
    hash_to_id = {}
    for i, d in enumerate(_read(split_file, "Unsplash test split", list)):
        if not isinstance(d, dict) or not isinstance(d.get("hash_id"), str):
            raise DataError('must be an object with "hash_id" and "id"', split_file, i)
        if d.get("id") is not None:
            hash_to_id[d["hash_id"]] = str(d["id"])
    photos, missing, skipped = [], [], []
    for hash_id in sorted(labels):
        img_id = hash_to_id.get(hash_id)
        if img_id is None:
            missing.append(f"sha256:{hash_id[:12]} (no photo id)")
            continue
        path = images_dir / f"img{img_id}.jpg"
        if not path.is_file():
            missing.append(path.name)
            continue
        rec = labels[hash_id]
        if not isinstance(rec, dict) or "crop_xywh" not in rec:
            raise DataError('must be an object with "crop_xywh"', label_file, hash_id)
        crops = rec["crop_xywh"]
        crops = crops if isinstance(crops, list) and crops and isinstance(crops[0], (list, tuple)) else [crops]
        unit = [annotation_box(c, "xywh", label_file, hash_id) for c in crops]
        subject_unit = None
        if rec.get("subject_xywh") is not None:
            subject_unit = annotation_box(rec["subject_xywh"], "xywh", label_file, hash_id, "subject_xywh")
        try:
            W, H = image_size(path)
        except ImageReadError as e:
            skipped.append((path.name, str(e)))
            continue
        gts = [b.scale(W, H) for b in unit]
        subject = None if subject_unit is None else subject_unit.scale(W, H)
        photo = BenchmarkPhoto(path.name, path, gts, subject)
        if rec.get("subject_mask"):
            photo.mask_png, photo.mask_source = base64.b64decode(rec["subject_mask"]), "png"
        photos.append(photo)
    photos, impossible = _drop_impossible_crops(photos)
    return Benchmark(
        "unsplash", dataset_dir, photos, missing, f"Unsplash {dataset_dir.name} test set", skipped=skipped + impossible
    )


# ----------------------------------------------------------------------------
# the test split of an outpainted training set
# ----------------------------------------------------------------------------
def _seeded_view(
    frame: Box, canvas_w: int, canvas_h: int, rng: np.random.Generator, min_scale: float = 1.25, max_scale: float = 2.0
) -> Box:
    """A view of the canvas holding the frame, its long side ``min_scale``-``max_scale`` x the frame's.

    The aspect ratios and feasible ranges are the training sampler's; the
    enlargement starts at ``min_scale`` so every test view has context to
    remove (where the canvas allows it), and the position is uniform.
    """
    from .sampling import ViewSampler

    frame = frame.rounded()
    opts = ViewSampler(max_scale=max_scale).options(frame, canvas_w, canvas_h)
    if not opts:
        return Box(0, 0, canvas_w, canvas_h)
    want = min_scale * max(frame.w, frame.h)
    roomy = [o for o in opts if o[3] >= want]
    if roomy:
        ratio, portrait_view, lo, hi = roomy[int(rng.integers(len(roomy)))]
        lo = max(lo, want)
    else:  # a frame that nearly fills its canvas: the largest view there is
        ratio, portrait_view, lo, hi = max(opts, key=lambda o: o[3])
        lo = hi
    long_side = float(rng.uniform(lo, hi)) if hi > lo else lo
    vw, vh = (ratio * long_side, long_side) if portrait_view else (long_side, ratio * long_side)
    vw = int(min(max(math.ceil(vw - 1e-6), frame.w), canvas_w))
    vh = int(min(max(math.ceil(vh - 1e-6), frame.h), canvas_h))
    x_lo, x_hi = int(max(0, frame.x2 - vw)), int(min(frame.x, canvas_w - vw))
    y_lo, y_hi = int(max(0, frame.y2 - vh)), int(min(frame.y, canvas_h - vh))
    x = int(rng.integers(x_lo, x_hi + 1)) if x_hi > x_lo else x_lo
    y = int(rng.integers(y_lo, y_hi + 1)) if y_hi > y_lo else y_lo
    return Box(x, y, vw, vh)


def load_own_test(
    outpaint_dir: str | os.PathLike, seed: int = 0, split: str = "test", bad_filter: bool = True
) -> Benchmark:
    """The test split of a generated dataset: one seeded view per photo, 1.25-2x its frame.

    The photo's variation and the view are drawn from a generator seeded by
    ``seed`` and the photo id, so a rerun (or another model) scores the same
    views. The ground truth is the original frame inside the view; the subject
    is the matched detection, with its polygon. A photo whose subject is
    ``null`` gets the rule training uses: the whole view is its subject, with
    an empty mask channel. Photos of the split without a usable canvas are
    listed in ``skipped``; a photo also in another split is an error.
    ``bad_filter=False`` also scores the canvases ``bad.json`` rejects (as ``train --no-bad-filter``).
    """
    from .outpaint import read_outpaint_set, read_split_files

    outpaint_dir = Path(outpaint_dir)
    try:
        read_split_files(outpaint_dir.parent, ("train", "val", "test"))
        data = read_outpaint_set(outpaint_dir, split, bad_filter=bad_filter)
    except FileNotFoundError as e:
        raise BenchmarkError(str(e)) from None
    photos = []
    for pid, variations in data.groups.items():
        rng = np.random.default_rng([seed, zlib.crc32(pid.encode("utf-8"))])
        v = variations[int(rng.integers(len(variations)))]
        view = _seeded_view(v.crop, v.width, v.height, rng)
        gt = v.crop.translate(-view.x, -view.y)
        photo = BenchmarkPhoto(v.img_file, data.image_dir / v.img_file, [gt], view=view)
        if v.subject is not None:
            photo.subject = v.subject.intersect(view).translate(-view.x, -view.y)
            poly = data.polygons.get(str(v.subject_mask_id))
            if poly is not None:
                photo.mask_polygon, photo.mask_source = poly, "detection"
        else:
            photo.subject, photo.mask_source = Box(0, 0, view.w, view.h), WHOLE_VIEW
        photos.append(photo)
    skipped = [(f"id {pid}", why) for pid, why in data.dropped_photos.items()]
    return Benchmark(
        "own",
        outpaint_dir,
        photos,
        [],
        f"{outpaint_dir.parent.name} {split} split ({data.summary()})",
        skipped=skipped,
        warnings=list(data.warnings),
    )


# ----------------------------------------------------------------------------
# subject masks from detections
# ----------------------------------------------------------------------------
def detection_files(folder: Path) -> tuple[Path, Path]:
    return folder / DETECT_FILE, folder / MASK_FILE


def segment_command(bench: Benchmark) -> str:
    """The command that writes the missing detection files of a benchmark (offline backend)."""
    cmds = []
    for folder in bench.detection_dirs:
        image_dirs = {p.path.parent for p in bench.photos if p.path.parent.parent == folder}
        image_dir = next(iter(image_dirs), folder / "images")
        cmds.append(f"gencrop segment {image_dir} -o {folder} --backend yolov7")
    return " && ".join(cmds)


def unsegmented(bench: Benchmark) -> dict[tuple[Path, Path], list[str]]:
    """Photos with a subject that no ``detect.json.gz`` covers yet: ``{(image folder, detection folder): stems}``.

    A folder's detections may have been made for some of its photos only
    (``gencrop eval --segment --limit N``); the others are found here.
    """
    todo: dict[tuple[Path, Path], list[str]] = {}
    for folder in bench.detection_dirs:
        det_file, _ = detection_files(folder)
        done = set(read_json(det_file)) if det_file.is_file() else set()
        for photo in bench.photos:
            stem = Path(photo.path.name).stem
            if photo.subject is not None and photo.path.parent.parent == folder and stem not in done:
                todo.setdefault((photo.path.parent, folder), []).append(stem)
    return todo


def attach_detection_masks(bench: Benchmark) -> tuple[int, int, list[Path]]:
    """Give each subject the polygon of its best-overlapping detection.

    Returns ``(matched, unmatched, missing_files)``. A photo whose detections
    all miss the subject box keeps the box as its mask (the published
    protocol); when a folder's files are missing nothing is attached there.
    """
    matched = unmatched = 0
    missing: list[Path] = []
    for folder in bench.detection_dirs:
        det_file, mask_file = detection_files(folder)
        if not (det_file.is_file() and mask_file.is_file()):
            missing += [f for f in (det_file, mask_file) if not f.is_file()]
            continue
        dets = read_detections(det_file)
        polygons = None
        for photo in bench.photos:
            if photo.subject is None or photo.path.parent.parent != folder:
                continue
            best, best_iou = None, 0.0
            for d in dets.get(Path(photo.path.name).stem, []):
                v = Box.from_xywh(d["xywh"]).iou(photo.subject)
                if v > best_iou:
                    best, best_iou = d, v
            if best is None:
                unmatched += 1
                continue
            if polygons is None:
                polygons = read_masks(mask_file)
            poly = polygons.get(str(best.get("mask_id")))
            if poly is None:
                unmatched += 1
                continue
            photo.mask_polygon = np.asarray(poly, np.float32).reshape(-1, 2)
            photo.mask_source = "detection"
            matched += 1
    return matched, unmatched, missing


def attach_found_subjects(
    bench: Benchmark, finder=None, progress: bool = False, *, inside_ground_truth: bool = False, detector=None
) -> int:
    """Give photos without an annotated subject the one the subject finder picks.

    Benchmarks scored on all their photos (``--all-images``) have no subject
    boxes; a user's photo has none either, so this is how the model and the
    subject baseline are judged there. With ``inside_ground_truth`` the subject
    is the most prominent object inside the (first) ground-truth crop: how the
    training data defines a photo's subject, i.e. the subject a user who knows
    what the photo is about would give. ``detector`` (``seg(images, sizes)``)
    also keeps every detection on ``photo.detections`` (the subject-following
    protocol's second objects). Returns how many subjects were attached.
    """
    from tqdm import tqdm

    from ..io import load_image
    from ..subject import find_subject

    finder = finder or find_subject
    found = 0
    todo = [p for p in bench.photos if p.subject is None and p.view is None]
    for photo in tqdm(todo, desc="subjects", unit="photo", disable=not progress, file=sys.stderr):
        try:
            img, size = load_image(photo.path, min_side=512)
        except ImageReadError:
            continue  # the runner reports the photo as failed
        detections = None
        if detector is not None:
            detections = photo.detections = detector.seg([img], sizes=[size])[0]
        frame = photo.gts[0].clamp(*size) if inside_ground_truth and photo.gts else None
        subject = finder(img, size=size, frame=frame, detections=detections)
        photo.subject = subject.box
        if frame is None:  # found as `gencrop crop` finds it: methods may treat it as found (gencrop.subject_rule)
            photo.found = subject
        if len(subject.polygon) >= 3:
            photo.mask_polygon = np.asarray(subject.polygon, np.float32).reshape(-1, 2)
        photo.mask_source = f"{'inside the crop' if frame is not None else 'found'} ({subject.source})"
        found += 1
    return found


# ----------------------------------------------------------------------------
# by name
# ----------------------------------------------------------------------------
def load_benchmark(
    name: str,
    data_root: str | os.PathLike | None = None,
    *,
    all_images: bool = False,
    dataset: str | os.PathLike | None = None,
    images: str | os.PathLike | None = None,
    seed: int = 0,
    bad_filter: bool = True,
) -> Benchmark:
    """Load a benchmark by its command-line name (``None``: the test split of ``dataset``, where
    ``bad_filter`` drops the canvases its ``bad.json`` names)."""
    if name is None:
        if dataset is None:
            raise BenchmarkError("no --benchmark and no --dataset: give the outpainted dataset folder to test on")
        return load_own_test(dataset, seed=seed, bad_filter=bad_filter)
    name = name.lower()
    if name == "unsplash":
        if dataset is None or images is None:
            raise BenchmarkError(
                "--benchmark unsplash needs --dataset DIR (testeval_sha256.json.gz + test.json) "
                "and --images DIR (img<ID>.jpg)"
            )
        return load_unsplash(dataset, images)
    if data_root is None:
        raise BenchmarkError(f"--benchmark {name} needs --data-root ROOT (the folder holding {name.upper()}/)")
    if not Path(data_root).is_dir():
        raise BenchmarkError(f"{data_root}: no such folder")
    loaders = {"fcdb": load_fcdb, "flms": load_flms, "gaicd": load_gaicd, "cpc": load_cpc, "flms+fcdb": load_flms_fcdb}
    if name == "sacd":
        return load_sacd(data_root)
    if name not in loaders:
        raise BenchmarkError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    return loaders[name](data_root, all_images)
