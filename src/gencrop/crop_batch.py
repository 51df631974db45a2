"""From prepared photos to crops: one network pass per batch, then the user's rules.

The network proposes a crop for each photo (GenCrop-C models: for each photo
and requested shape); :func:`crop_result` maps it back to photo pixels and
applies the rules of :mod:`gencrop.shapes`: inside the photo, the requested
shape, and a given subject kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np

from .crop_prepare import PreparedPhoto
from .crop_result import CropResult
from .geometry import Box
from .io import ImageReadError
from .runtime import Network, NetworkInfo
from .shapes import Shape, fit_shape, pull_toward, shape_request
from .subject_rule import keeps_subject

__all__ = ["PHOTO_ERRORS", "crop_each", "crop_prepared", "crop_result", "shape_requests"]

# What a job over many photos reports for one photo and goes on from (`gencrop crop`, `gencrop batch`):
# the photo cannot be read or decoded, or what was asked of it is wrong (a subject outside it, ...).
PHOTO_ERRORS: tuple[type[Exception], ...] = (ImageReadError, ValueError, OSError)

Item = TypeVar("Item")


def shape_requests(info: NetworkInfo, shapes: Sequence[Shape]) -> np.ndarray | None:
    """GenCrop-C models read the requested shape; every model gets it exactly from :func:`fit_shape`."""
    if not info.takes_shape or all(s.is_free for s in shapes):
        return None
    return np.array([shape_request(area=s.area, aspect=s.aspect) for s in shapes], np.float32)


def run_network(
    network: Network, prepared: Sequence[PreparedPhoto], shapes: Sequence[Shape]
) -> tuple[np.ndarray, np.ndarray]:
    """(B, 4) crops in input pixels (xyxy) and (B, rows, cols) cell weights, one row per prepared photo."""
    images = np.stack([p.array for p in prepared])
    subjects = np.array([p.subject_input.xyxy for p in prepared], np.float32)
    crops, weights = network(images, subjects, shape_requests(network.info, shapes))
    return crops * network.info.image_size, weights


def crop_result(
    p: PreparedPhoto, crop_input: np.ndarray, weights: np.ndarray, shape: Shape, keep: bool, subject_pull: float
) -> CropResult:
    """The network's crop in photo pixels, then the user's rules: inside the photo, the shape, the subject."""
    width, height = p.size
    raw = p.letterbox.to_photo(Box.from_xyxy(*crop_input))
    box = raw.clamp(width, height)
    if box.is_empty():  # degenerate prediction: fall back to the subject's surroundings
        box = p.subject
    if keep:
        box = pull_toward(box, p.subject, subject_pull, width, height)
    final = fit_shape(box, shape, width, height, p.subject if keep else None)
    return CropResult(
        box=final,
        raw_box=raw,
        subject=p.subject,
        heatmap=weights,
        size=(width, height),
        subject_source=p.source,
        shape=None if shape.is_free else shape,
        subject_kept=keep,
        subject_class=p.subject_class,
        subject_score=p.subject_score,
        full=p.full,
    )


def crop_prepared(
    network: Network,
    prepared: Sequence[PreparedPhoto],
    shapes: Sequence[Shape],
    *,
    keep_subject: bool | None = None,
    subject_pull: float = 0.0,
) -> list[list[CropResult]]:
    """One list of crops (one per shape) per prepared photo, from one network pass."""
    if network.info.takes_shape:  # the shape goes into the network: one row per photo and shape
        crops, weights = run_network(network, [p for p in prepared for _ in shapes], list(shapes) * len(prepared))
    else:  # one row per photo, whatever the shapes
        c, w = run_network(network, prepared, [Shape()] * len(prepared))
        crops, weights = np.repeat(c, len(shapes), 0), np.repeat(w, len(shapes), 0)
    n = len(shapes)
    results = []
    for i, p in enumerate(prepared):
        keep = keeps_subject(p.source, p.subject_class, p.subject_score) if keep_subject is None else bool(keep_subject)
        rows = zip(shapes, crops[i * n : (i + 1) * n], weights[i * n : (i + 1) * n])
        results.append([crop_result(p, c, w, s, keep, subject_pull) for s, c, w in rows])
    return results


def crop_each(
    cropper,
    prepare: Callable[[Item], PreparedPhoto],
    items: Sequence[Item],
    shapes: Sequence[Shape],
    *,
    keep_subject: bool | None = None,
    map_items: Callable[[Callable, Sequence], Iterable] = map,
) -> list[list[CropResult] | Exception]:
    """Crop a batch in which any photo may fail: per item, its crops (one per shape) or the
    :data:`PHOTO_ERRORS` error that stopped it, the other photos unaffected.

    ``prepare(item)`` gives the item prepared (:meth:`gencrop.Cropper.prepare`); ``map_items`` runs
    it over the items (``ThreadPoolExecutor.map``: decodes and subject searches on several threads).
    Then one network pass for every photo prepared (photo by photo when that pass fails).
    """

    def attempt(item: Item) -> PreparedPhoto | Exception:
        try:
            return prepare(item)
        except PHOTO_ERRORS as e:
            return e

    out: list = list(map_items(attempt, items))
    ready = [i for i, p in enumerate(out) if not isinstance(p, Exception)]
    if not ready:
        return out
    shapes = list(shapes)
    try:
        batch = [out[i] for i in ready]
        crops: list = list(cropper.crop(batch, shapes=shapes, keep_subject=keep_subject, batch_size=len(batch)))
    except PHOTO_ERRORS:
        crops = []
        for i in ready:
            try:
                crops.append(cropper.crop(out[i], shapes=shapes, keep_subject=keep_subject))
            except PHOTO_ERRORS as e:
                crops.append(e)
    for i, result in zip(ready, crops):
        out[i] = result
    return out
