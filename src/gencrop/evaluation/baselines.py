"""Cropping methods as the evaluation sees them, and the simple baselines every figure is read against.

A *method* takes a photo (a PIL image, or ``None`` when it does not look at
pixels), the photo's size, the subject box, optionally the subject mask and
a requested :class:`~gencrop.shapes.Shape`, and returns a :class:`Prediction`
in photo pixels. Methods that cannot honour a shape refuse one. The benchmark protocol
(clamping, scoring) is applied by the runner, never by a method, so a
baseline and the model are measured identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..geometry import Box
from ..shapes import Shape, fit_shape

__all__ = [
    "Prediction",
    "Method",
    "IdentityBaseline",
    "CenterBaseline",
    "SubjectBaseline",
    "BASELINES",
    "make_baseline",
    "subject_window",
    "LargestAtShapeBaseline",
    "SHAPE_BASELINES",
]


@dataclass
class Prediction:
    box: Box  # the raw prediction, photo pixels (not clamped)
    heatmap: np.ndarray | None = None  # gencrop.visualize's heatmap on the photo (any resolution; NaN: not drawn)
    subject: Box | None = None  # the subject the method actually used, when it chose one


class Method(Protocol):
    name: str
    needs_pixels: bool  # False: the runner may pass ``image=None`` and skip decoding
    uses_mask: bool  # True: scores change with the subject mask, so masks must be real

    def predict(
        self, image, size: tuple[int, int], subject: Box | None, mask: np.ndarray | None, shape: Shape | None = None
    ) -> Prediction: ...


class IdentityBaseline:
    """The whole photo: how good the photographer's own framing already is."""

    name = "identity"
    needs_pixels = False
    uses_mask = False

    def predict(self, image, size, subject, mask, shape=None) -> Prediction:
        _no_shape(self, shape)
        return Prediction(Box(0, 0, size[0], size[1]))


class CenterBaseline:
    """A centred window with each side ``fraction`` of the photo's (same aspect ratio)."""

    needs_pixels = False
    uses_mask = False

    def __init__(self, fraction: float = 0.8):
        if not 0 < fraction <= 1:
            raise ValueError(f"centre fraction must be in (0, 1]; got {fraction}")
        self.fraction = fraction
        self.name = f"center:{fraction:g}"

    def predict(self, image, size, subject, mask, shape=None) -> Prediction:
        _no_shape(self, shape)
        W, H = size
        return Prediction(Box(0, 0, W, H).expand(self.fraction))


def subject_window(subject: Box | None, width: float, height: float, grow: float = 1.1, min_area: float = 0.5) -> Box:
    """The smallest photo-shaped window covering ``min_area`` of the photo that holds the grown subject.

    The subject box grown by ``grow`` (about its centre, then clipped to the
    photo) must fit; the window is centred on it and slid back inside the
    photo. Without a subject the window is the whole photo.
    """
    photo = Box(0, 0, width, height)
    if subject is None or subject.is_empty():
        return photo
    need = subject.expand(grow).intersect(photo)
    if need.is_empty():
        need = subject.intersect(photo)
    scale = max(min_area**0.5, need.w / width, need.h / height)
    scale = min(scale, 1.0)
    w, h = width * scale, height * scale
    cx, cy = need.center
    x = min(max(cx - w / 2, 0.0), width - w)
    y = min(max(cy - h / 2, 0.0), height - h)
    return Box(x, y, w, h)


class SubjectBaseline:
    """The tightest photo-shaped window that keeps the subject (grown 10%) and half the photo."""

    name = "subject"
    needs_pixels = False
    uses_mask = False

    def predict(self, image, size, subject, mask, shape=None) -> Prediction:
        _no_shape(self, shape)
        return Prediction(subject_window(subject, size[0], size[1]))


class LargestAtShapeBaseline:
    """The largest crop of the requested shape, centred on the photo (``largest``) or on the subject
    (``largest-subject``, slid back inside the photo): what a shape-only cropper returns."""

    needs_pixels = False
    uses_mask = False

    def __init__(self, on_subject: bool = False):
        self.on_subject = on_subject
        self.name = "largest-subject" if on_subject else "largest"

    def predict(self, image, size, subject, mask, shape=None) -> Prediction:
        W, H = size
        if shape is None or shape.ratio is None:
            raise ValueError(f"the {self.name} baseline needs a requested aspect ratio")
        centre = subject.center if self.on_subject and subject is not None else (W / 2, H / 2)
        whole = Box(centre[0] - W / 2, centre[1] - H / 2, W, H)  # any box with that centre and the photo's area
        largest = Shape(ratio=shape.ratio, area=1.0)
        return Prediction(fit_shape(whole, largest, W, H))


class SmartcropBaseline:
    """smartcrop.py (edges, skin and saturation heuristics) asked for a crop of the photo's aspect ratio.

    A widely used content-aware cropper with no notion of a given subject; it
    needs the ``smartcrop`` package (``pip install smartcrop``).
    """

    name = "smartcrop"
    needs_pixels = True
    uses_mask = False

    def __init__(self):
        try:
            import smartcrop
        except ImportError:
            raise ValueError("the smartcrop baseline needs the smartcrop package: pip install smartcrop") from None
        self._cropper = smartcrop.SmartCrop()

    def predict(self, image, size, subject, mask, shape=None) -> Prediction:
        W, H = size
        scale = image.width / W
        if shape is not None and shape.ratio is not None:
            # smartcrop looks among the largest crops (0.9-1.0) of the asked width:height
            top = self._cropper.crop(image, 1000 * shape.ratio[0], 1000 * shape.ratio[1])["top_crop"]
        else:
            top = self._cropper.crop(image, image.width, image.height)["top_crop"]
        return Prediction(Box(top["x"], top["y"], top["width"], top["height"]).scale(1 / scale))


BASELINES = ("identity", "center:0.8", "subject")


# the baselines of the shape protocol (the expert crop's aspect ratio asked for)
SHAPE_BASELINES = ("largest", "largest-subject", "smartcrop")


def _no_shape(method, shape: Shape | None) -> None:
    if shape is not None and not shape.is_free:
        raise ValueError(f"the {method.name} baseline does not take a requested shape")


def make_baseline(spec: str):
    """``identity`` | ``center[:FRACTION]`` | ``subject`` | ``smartcrop`` | ``largest`` | ``largest-subject``."""
    name, _, arg = spec.strip().lower().partition(":")
    if name in ("largest", "largest-subject") and not arg:
        return LargestAtShapeBaseline(on_subject=name == "largest-subject")
    if name == "identity" and not arg:
        return IdentityBaseline()
    if name in ("center", "centre"):
        try:
            return CenterBaseline(float(arg) if arg else 0.8)
        except ValueError as e:
            raise ValueError(f"bad centre baseline {spec!r}: {e}") from None
    if name == "subject" and not arg:
        return SubjectBaseline()
    if name == "smartcrop" and not arg:
        return SmartcropBaseline()
    raise ValueError(
        f"unknown baseline {spec!r}; choose from identity, center:FRACTION, subject, smartcrop, "
        "largest, largest-subject"
    )


class ModelMethod:
    """A GenCrop model through :class:`gencrop.inference.Cropper` (the same path as ``gencrop crop``).

    The subject goes in as the annotated box, with its mask for models with a
    mask channel; the prediction is the crop a user gets (requested shape and
    subject rules applied). The heatmap is :mod:`gencrop.visualize`'s (the subject cells' weights
    relative to the top one, NaN elsewhere), cut to the photo's part of the letterboxed input.
    """

    needs_pixels = True
    takes_found_subject = True  # a found subject comes as the finder's Subject: gencrop.subject_rule applies

    def __init__(self, cropper, name: str = "gencrop", keep_subject: bool | None = None):
        self.cropper = cropper
        self.name = name
        self.keep_subject = keep_subject
        self.uses_mask = bool(cropper.network.info.use_subject_mask)

    def predict(self, image, size, subject, mask, shape=None) -> Prediction:
        from ..data.letterbox import Letterbox
        from ..visualize import crop_cell_weights

        if subject is None and mask is not None and mask.any():
            subject, mask = mask, None
        # an empty mask with a subject is deliberate: a photo without a subject (the whole view, no mask)
        use_mask = self.uses_mask and mask is not None and subject is not None
        res = self.cropper.crop(
            image,
            subject=subject,
            subject_mask=mask if use_mask else None,
            aspect=shape.aspect if shape is not None else None,
            area=shape.area if shape is not None else None,
            keep_subject=self.keep_subject,
        )
        dim = self.cropper.dim
        rows, cols = res.heatmap.shape
        lb = Letterbox(size[0], size[1], dim)
        relative = crop_cell_weights(res, dim).relative()
        full = np.repeat(np.repeat(relative, dim // rows, 0), dim // cols, 1)
        v = lb.valid
        heat = full[int(v.y) : int(v.y2), int(v.x) : int(v.x2)]
        # the crop a user gets (shape and subject rules applied), not the network's raw proposal
        return Prediction(res.box, heat if heat.size else None, res.subject)
