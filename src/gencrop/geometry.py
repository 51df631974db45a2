"""Boxes and the benchmark metrics (IoU and boundary displacement).

Every box in gencrop is a :class:`Box` in ``xywh`` form with ``x2 = x + w``.
The metric functions follow the evaluation protocol of the GenCrop paper (and
of the cropping literature before it) exactly, including its tie-breaking rule
between several ground-truth crops, so that figures are comparable with
published tables.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "Box",
    "iou",
    "boundary_displacement",
    "score_against_ground_truths",
    "clamp_prediction",
    "legacy_prediction_to_xywh",
    "summarize",
]


@dataclass(frozen=True)
class Box:
    """An axis-aligned box ``(x, y, w, h)``; ``x2 = x + w``, ``y2 = y + h``."""

    x: float
    y: float
    w: float
    h: float

    # -- construction -----------------------------------------------------
    @classmethod
    def from_xyxy(cls, x1: float, y1: float, x2: float, y2: float) -> Box:
        return cls(float(x1), float(y1), float(x2) - float(x1), float(y2) - float(y1))

    @classmethod
    def from_xywh(cls, xywh: Sequence[float]) -> Box:
        x, y, w, h = (float(v) for v in xywh)
        return cls(x, y, w, h)

    @classmethod
    def parse(cls, text: str) -> Box:
        """Parse ``"x,y,w,h"`` (as typed on the command line)."""
        parts = [p for p in text.replace(" ", "").split(",") if p != ""]
        if len(parts) != 4:
            raise ValueError(f"a box is four numbers x,y,w,h; got {text!r}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"a box is four numbers x,y,w,h; got {text!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"box values must be finite; got {text!r}")
        box = cls(*values)
        if box.w <= 0 or box.h <= 0:
            raise ValueError(f"box width and height must be positive; got {text!r}")
        return box

    # -- views --------------------------------------------------------------
    @property
    def x2(self) -> float:
        return self.x + self.w

    @property
    def y2(self) -> float:
        return self.y + self.h

    @property
    def xywh(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.w, self.h)

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.x2, self.y2)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)

    @property
    def area(self) -> float:
        return self.w * self.h

    @property
    def aspect(self) -> float:
        """Width over height."""
        return self.w / self.h

    def is_empty(self) -> bool:
        return not (self.w > 0 and self.h > 0)

    # -- set operations -------------------------------------------------------
    def intersection(self, other: Box) -> float:
        iw = min(self.x2, other.x2) - max(self.x, other.x)
        ih = min(self.y2, other.y2) - max(self.y, other.y)
        if iw <= 0 or ih <= 0:
            return 0.0
        return iw * ih

    def intersect(self, other: Box) -> Box:
        """The overlapping box (empty, zero-sized, when they do not overlap)."""
        x1, y1 = max(self.x, other.x), max(self.y, other.y)
        x2, y2 = min(self.x2, other.x2), min(self.y2, other.y2)
        return Box.from_xyxy(x1, y1, max(x1, x2), max(y1, y2))

    def union_box(self, other: Box) -> Box:
        return Box.from_xyxy(min(self.x, other.x), min(self.y, other.y), max(self.x2, other.x2), max(self.y2, other.y2))

    def iou(self, other: Box) -> float:
        inter = self.intersection(other)
        if inter <= 0:
            return 0.0
        return inter / (self.area + other.area - inter)

    def contains(self, other: Box, tol: float = 1e-6) -> bool:
        return (
            other.x >= self.x - tol
            and other.y >= self.y - tol
            and other.x2 <= self.x2 + tol
            and other.y2 <= self.y2 + tol
        )

    # -- transforms -----------------------------------------------------------
    def scale(self, sx: float, sy: float | None = None) -> Box:
        sy = sx if sy is None else sy
        return Box(self.x * sx, self.y * sy, self.w * sx, self.h * sy)

    def translate(self, dx: float, dy: float) -> Box:
        return Box(self.x + dx, self.y + dy, self.w, self.h)

    def clamp(self, width: float, height: float) -> Box:
        """Clip to the image ``[0, width] x [0, height]`` (never negative size)."""
        x1 = min(max(self.x, 0.0), width)
        y1 = min(max(self.y, 0.0), height)
        x2 = min(max(self.x2, x1), width)
        y2 = min(max(self.y2, y1), height)
        return Box.from_xyxy(x1, y1, x2, y2)

    def expand(self, factor: float) -> Box:
        """Grow (or shrink) about the centre by ``factor`` in each dimension."""
        cx, cy = self.center
        w, h = self.w * factor, self.h * factor
        return Box(cx - w / 2, cy - h / 2, w, h)

    def rounded(self) -> Box:
        """Integer pixel box that covers at least one pixel."""
        x1, y1 = int(math.floor(self.x + 1e-6)), int(math.floor(self.y + 1e-6))
        x2, y2 = int(math.ceil(self.x2 - 1e-6)), int(math.ceil(self.y2 - 1e-6))
        return Box(x1, y1, max(1, x2 - x1), max(1, y2 - y1))

    def tolist(self) -> list[float]:
        return [self.x, self.y, self.w, self.h]


def _as_box(b) -> Box:
    return b if isinstance(b, Box) else Box.from_xywh(b)


def iou(a, b) -> float:
    """IoU of two boxes (``Box`` or xywh sequences); 0 when they do not overlap."""
    return _as_box(a).iou(_as_box(b))


def boundary_displacement(pred, gt, width: float, height: float) -> float:
    """Boundary displacement ``(|dx1|+|dx2|)/W + (|dy1|+|dy2|)/H``.

    Benchmarks report the mean of this value divided by 4 (the "BDE").
    """
    p, g = _as_box(pred), _as_box(gt)
    return (abs(p.x - g.x) + abs(p.x2 - g.x2)) / width + (abs(p.y - g.y) + abs(p.y2 - g.y2)) / height


def score_against_ground_truths(pred, gts: Iterable, width: float, height: float) -> tuple[float, float, int]:
    """Score one prediction against one or several ground-truth crops.

    Returns ``(iou, displacement, index_of_gt_used)``. With several crops the
    max-IoU crop is used, unless the min-displacement crop has exactly the same
    IoU (ties, including all-zero IoUs), in which case that crop is used: this
    is the rule of the published evaluation code, kept for comparable numbers.
    """
    p = _as_box(pred)
    gts = [_as_box(g) for g in gts]
    if not gts:
        raise ValueError("at least one ground-truth crop is needed")
    ious = [p.iou(g) for g in gts]
    disps = [boundary_displacement(p, g, width, height) for g in gts]
    i = max(range(len(gts)), key=lambda k: (ious[k], -k))
    d = min(range(len(gts)), key=lambda k: (disps[k], k))
    k = d if ious[i] == ious[d] else i
    return ious[k], disps[k], k


def clamp_prediction(pred, valid) -> Box:
    """Clamp a prediction to the valid (non-padding) region, as the benchmark protocol does.

    ``x1``/``y1`` are raised to the valid region's when strictly smaller and
    ``x2``/``y2`` lowered to its far edges when greater or equal. ``x1``/``y1``
    are deliberately *not* clamped from above, so a prediction lying entirely
    to the right of (or below) the region gets a negative size and scores 0:
    published figures were computed this way. For user-facing crops use
    :meth:`Box.clamp`.
    """
    p, v = _as_box(pred), _as_box(valid)
    x1 = v.x if p.x < v.x else p.x
    y1 = v.y if p.y < v.y else p.y
    x2 = v.x2 if p.x2 >= v.x2 else p.x2
    y2 = v.y2 if p.y2 >= v.y2 else p.y2
    return Box.from_xyxy(x1, y1, x2, y2)


def legacy_prediction_to_xywh(norm_xyxy: Sequence[float], size: float) -> Box:
    """Convert a normalised xyxy prediction to pixels the way the original code did.

    The original post-processing set every negative *xywh* entry to zero
    after the conversion, so a negative ``x1`` becomes 0 while the width
    computed from it is kept (the box shifts). Only used to reproduce
    published numbers; :class:`~gencrop.Cropper` clamps properly.
    """
    x1, y1, x2, y2 = (float(v) * size for v in norm_xyxy)
    vals = [x1, y1, x2 - x1, y2 - y1]
    return Box(*[v if v > 0 else 0.0 for v in vals])


def summarize(ious: Sequence[float], disps: Sequence[float], threshold: float = 0.75) -> dict:
    """Benchmark summary: mean IoU, mean displacement / 4 (BDE), fraction IoU >= threshold."""
    n = len(ious)
    if n == 0:
        return {
            "num_images": 0,
            "mean_iou": float("nan"),
            "mean_bde": float("nan"),
            f"frac_iou_ge_{threshold}": float("nan"),
        }
    return {
        "num_images": n,
        "mean_iou": float(sum(ious) / n),
        "mean_bde": float(sum(disps) / n / 4.0),
        f"frac_iou_ge_{threshold}": float(sum(1 for v in ious if v >= threshold) / n),
    }
