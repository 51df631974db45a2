"""What a user asks of a crop: its shape, and that it keeps the subject.

The network proposes a crop; these rules turn it into the crop the user gets,
in whole photo pixels:

* **Shape** (:class:`Shape`): ``1:1``, ``16:9``, ``0.8`` or an exact output
  size ``1200x630``. The crop has exactly that aspect ratio, to the pixel:
  its sides are a whole multiple of the ratio in lowest terms (16:9 crops
  are 16m x 9m pixels). It keeps the proposed crop's centre and area as far as
  the photo allows; ``area`` fixes the area instead.
* **Subject** (:func:`pull_toward`, :func:`keep_subject`): a given subject is
  a promise. The crop's centre first moves part of the way toward the
  subject's (the model's ``subject_pull``), then the crop is shifted, and
  grown only along a side where the subject is larger than it, always inside
  the photo. A subject larger than the largest crop of the requested shape is
  centred and cut as little as the shape allows.

Everything here is plain arithmetic on boxes, shared by every runtime and by
the evaluation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from .geometry import Box

__all__ = ["Shape", "fit_shape", "keep_subject", "pull_toward", "round_box", "shape_request", "MAX_RATIO_TERM"]

# A ratio typed as a decimal (0.8) is read as the nearest fraction with terms up to this.
MAX_RATIO_TERM = 100


@dataclass(frozen=True)
class Shape:
    """A requested crop shape. ``ratio`` (w, h) in lowest terms; ``size`` an exact output size."""

    ratio: tuple[int, int] | None = None
    size: tuple[int, int] | None = None
    area: float | None = None

    def __post_init__(self):
        if self.ratio is not None and not (self.ratio[0] > 0 and self.ratio[1] > 0):
            raise ValueError(f"an aspect ratio must be positive; got {self.ratio[0]}:{self.ratio[1]}")
        if self.size is not None and not (self.size[0] > 0 and self.size[1] > 0):
            raise ValueError(f"an output size must be positive; got {self.size[0]}x{self.size[1]}")
        if self.area is not None and not 0 < self.area <= 1:
            raise ValueError(f"area must be a fraction of the photo in (0, 1]; got {self.area}")

    @classmethod
    def parse(cls, text: str, area: float | None = None) -> "Shape":
        """``"free"``, ``"W:H"`` (``"4:5"``), a decimal width/height (``"0.8"``) or ``"WxH"`` (an output size)."""
        t = str(text).strip().lower()
        if t in ("", "free", "any"):
            return cls(area=area)
        m = re.fullmatch(r"(\d+)\s*x\s*(\d+)", t)
        if m:
            w, h = int(m.group(1)), int(m.group(2))
            if w <= 0 or h <= 0:
                raise ValueError(f"an output size must be positive; got {text!r}")
            return cls(ratio=_lowest(w, h), size=(w, h), area=area)
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)", t)
        try:
            if m:
                value = Fraction(m.group(1)) / Fraction(m.group(2))
            else:
                value = Fraction(t)
        except (ValueError, ZeroDivisionError):
            raise ValueError(
                f"a shape is W:H (4:5), a decimal width/height (0.8), WxH (1200x630) or free; got {text!r}"
            ) from None
        if value <= 0:
            raise ValueError(f"an aspect ratio must be positive; got {text!r}")
        value = value.limit_denominator(MAX_RATIO_TERM)
        return cls(ratio=(value.numerator, value.denominator), area=area)

    @classmethod
    def from_aspect(
        cls, aspect: float | None = None, area: float | None = None, size: tuple[int, int] | None = None
    ) -> "Shape":
        """From the Python API's keywords: ``aspect`` (w/h number or text), ``area``, ``size`` (W, H)."""
        if size is not None:
            w, h = (int(v) for v in size)
            shape = cls.parse(f"{w}x{h}", area)
            if aspect is not None and abs(float(Fraction(*shape.ratio)) - _aspect_value(aspect)) > 1e-6:
                raise ValueError(f"size {w}x{h} and aspect {aspect} disagree; give one of them")
            return shape
        if aspect is None:
            return cls(area=area)
        return cls.parse(str(aspect), area) if isinstance(aspect, str) else cls.parse(repr(float(aspect)), area)

    @property
    def aspect(self) -> float | None:
        return self.ratio[0] / self.ratio[1] if self.ratio else None

    @property
    def is_free(self) -> bool:
        return self.ratio is None and self.area is None

    @property
    def name(self) -> str:
        """For file names: ``1x1``, ``16x9``, ``1200x630``, ``free``."""
        if self.size:
            base = f"{self.size[0]}x{self.size[1]}"
        elif self.ratio:
            base = f"{self.ratio[0]}x{self.ratio[1]}"
        else:
            base = "free"
        return base if self.area is None else f"{base}_area{self.area:g}"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "aspect": list(self.ratio) if self.ratio else None,
            "size": list(self.size) if self.size else None,
            "area": self.area,
        }


def _aspect_value(aspect) -> float:
    return Shape.parse(aspect).aspect if isinstance(aspect, str) else float(aspect)


def _lowest(w: int, h: int) -> tuple[int, int]:
    g = math.gcd(w, h)
    return w // g, h // g


def round_box(box: Box, width: int, height: int) -> Box:
    """The crop on whole pixels: each edge to its nearest pixel line, inside the photo, at least 1 px.

    The one rounding rule: what is printed, written as JSON and cut out of the
    photo is this box.
    """
    x1 = min(max(int(round(box.x)), 0), width - 1)
    y1 = min(max(int(round(box.y)), 0), height - 1)
    x2 = min(max(int(round(box.x2)), x1 + 1), width)
    y2 = min(max(int(round(box.y2)), y1 + 1), height)
    return Box(x1, y1, x2 - x1, y2 - y1)


def _place(centre: float, length: int, limit: int, need: tuple[int, int] | None) -> int:
    """Start of a ``length`` span centred near ``centre`` inside ``[0, limit]``, covering ``need`` if it can."""
    start = int(round(centre - length / 2))
    lo, hi = 0, limit - length
    if need is not None and need[1] - need[0] <= length:
        lo, hi = max(lo, need[1] - length), min(hi, need[0])
    return min(max(start, lo), hi)


def _pixel_span(box: Box | None, width: int, height: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The whole pixels a subject covers, inside the photo: ((x1, x2), (y1, y2))."""
    if box is None:
        return None
    c = box.clamp(width, height)
    x1, y1 = int(math.floor(c.x + 1e-6)), int(math.floor(c.y + 1e-6))
    x2, y2 = int(math.ceil(c.x2 - 1e-6)), int(math.ceil(c.y2 - 1e-6))
    return (x1, max(x2, x1 + 1)), (y1, max(y2, y1 + 1))


def pull_toward(box: Box, subject: Box, amount: float, width: int, height: int) -> Box:
    """``box`` moved ``amount`` (0-1) of the way from its centre toward the subject's centre: the crop
    follows the subject it is given. What the move takes past the photo's border is cut off, so a
    crop drawn toward a subject near the border also tightens on it (sliding it back instead moves
    large crops too little to follow; see benchmarks/framing_study.py)."""
    if amount <= 0:
        return box
    (cx, cy), (sx, sy) = box.center, subject.clamp(width, height).center
    moved = box.translate(amount * (sx - cx), amount * (sy - cy)).clamp(width, height)
    return box if moved.is_empty() else moved


def keep_subject(box: Box, subject: Box, width: int, height: int) -> Box:
    """``box`` (whole pixels, inside the photo) moved, then grown where needed, to contain ``subject``."""
    (sx1, sx2), (sy1, sy2) = _pixel_span(subject, width, height)
    w, h = max(int(box.w), sx2 - sx1), max(int(box.h), sy2 - sy1)
    x = _place(box.x + box.w / 2, w, width, (sx1, sx2))
    y = _place(box.y + box.h / 2, h, height, (sy1, sy2))
    return Box(x, y, w, h)


def fit_shape(box: Box, shape: Shape, width: int, height: int, subject: Box | None = None) -> Box:
    """The crop of ``shape`` closest to the proposed ``box``, in whole pixels inside the photo.

    Same centre; same area unless ``shape.area`` says otherwise; with
    ``subject``, large enough for it and placed around it whenever it fits.
    """
    if shape.ratio is None:
        out = round_box(box, width, height)
        if shape.area is not None:
            scale = math.sqrt(shape.area * width * height / max(box.area, 1e-9))
            grown = box.expand(scale)
            w, h = min(width, max(1, int(round(grown.w)))), min(height, max(1, int(round(grown.h))))
            cx, cy = box.center
            out = Box(_place(cx, w, width, None), _place(cy, h, height, None), w, h)
        return keep_subject(out, subject, width, height) if subject is not None else out
    p, q = shape.ratio
    most = min(width // p, height // q)
    if most < 1:  # the ratio's terms exceed the photo: the nearest whole-pixel aspect instead
        return _fit_near_aspect(box, p / q, width, height, subject)
    area = shape.area * width * height if shape.area is not None else box.area
    m = int(round(math.sqrt(max(area, 1.0) / (p * q))))
    span = _pixel_span(subject, width, height)
    if span is not None:
        m = max(m, -(-(span[0][1] - span[0][0]) // p), -(-(span[1][1] - span[1][0]) // q))
    m = min(max(m, 1), most)
    w, h = m * p, m * q
    cx, cy = box.center
    if span is not None:
        # a subject too large for the shape: centre on it instead of the proposal
        cx = cx if span[0][1] - span[0][0] <= w else (span[0][0] + span[0][1]) / 2
        cy = cy if span[1][1] - span[1][0] <= h else (span[1][0] + span[1][1]) / 2
    return Box(_place(cx, w, width, span and span[0]), _place(cy, h, height, span and span[1]), w, h)


def _fit_near_aspect(box: Box, aspect: float, width: int, height: int, subject: Box | None) -> Box:
    """A ratio with terms larger than the photo (1999:1000 on a small photo): height = round(width / aspect)."""
    w = min(width, int(round(height * aspect)))
    w = max(1, min(w, int(round(math.sqrt(max(box.area, 1.0) * aspect)))))
    h = max(1, min(height, int(round(w / aspect))))
    cx, cy = box.center
    span = _pixel_span(subject, width, height)
    return Box(_place(cx, w, width, span and span[0]), _place(cy, h, height, span and span[1]), w, h)


def shape_request(area: float | None = None, aspect: float | None = None) -> list[float]:
    """The GenCrop-C request for a user's shape: ``[area, log(aspect), has_area, has_aspect]``.

    ``area`` in (0, 1] of the photo, ``aspect`` = width / height; None = let the model choose.
    """
    if area is not None and not 0 < area <= 1:
        raise ValueError(f"area must be a fraction of the photo in (0, 1]; got {area}")
    if aspect is not None and not aspect > 0:
        raise ValueError(f"aspect must be positive (width / height); got {aspect}")
    return [area or 0.0, math.log(aspect) if aspect else 0.0, float(area is not None), float(aspect is not None)]
