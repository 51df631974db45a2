"""The letterbox transform: the one way a photo becomes a network input.

Training, evaluation and inference must prepare images identically, so this
module is the only place that does it: the longest side is resized to
``dim``, the photo is centred, the rest is zero after ImageNet normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..geometry import Box

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Letterbox:
    """Where a ``width`` x ``height`` photo sits inside a ``dim`` x ``dim`` input."""

    width: int
    height: int
    dim: int

    @property
    def scale(self) -> float:
        return self.dim / max(self.width, self.height)

    @property
    def resized(self) -> tuple[int, int]:
        s = self.scale
        return (max(1, min(self.dim, round(self.width * s))), max(1, min(self.dim, round(self.height * s))))

    @property
    def offset(self) -> tuple[int, int]:
        rw, rh = self.resized
        return ((self.dim - rw) // 2, (self.dim - rh) // 2)

    @property
    def valid(self) -> Box:
        """The photo's region in input pixels."""
        (ox, oy), (rw, rh) = self.offset, self.resized
        return Box(ox, oy, rw, rh)

    def to_input(self, box: Box) -> Box:
        """Photo pixels -> input pixels."""
        (ox, oy), (rw, rh) = self.offset, self.resized
        return box.scale(rw / self.width, rh / self.height).translate(ox, oy)

    def to_photo(self, box: Box) -> Box:
        """Input pixels -> photo pixels."""
        (ox, oy), (rw, rh) = self.offset, self.resized
        return box.translate(-ox, -oy).scale(self.width / rw, self.height / rh)


def letterbox_image(
    img: Image.Image, dim: int, size: tuple[int, int] | None = None, resample=Image.BILINEAR
) -> tuple[np.ndarray, Letterbox]:
    """Resize and pad a PIL RGB image; returns a normalised float32 CHW array and its geometry.

    ``size`` is the full photo size when ``img`` was decoded at reduced
    resolution (boxes stay in full-size pixels).
    """
    lb = Letterbox(*(size or img.size), dim)
    rw, rh = lb.resized
    ox, oy = lb.offset
    small = img.resize((rw, rh), resample) if img.size != (rw, rh) else img
    arr = np.zeros((3, dim, dim), np.float32)
    pix = np.asarray(small, dtype=np.float32).transpose(2, 0, 1) / 255.0
    mean = np.asarray(IMAGENET_MEAN, np.float32)[:, None, None]
    std = np.asarray(IMAGENET_STD, np.float32)[:, None, None]
    arr[:, oy : oy + rh, ox : ox + rw] = (pix - mean) / std
    return arr, lb


def letterbox_mask(mask: np.ndarray, lb: Letterbox) -> np.ndarray:
    """Place a photo-sized bool/float mask into the letterboxed input (float32, dim x dim)."""
    rw, rh = lb.resized
    ox, oy = lb.offset
    m = Image.fromarray((np.asarray(mask, dtype=np.float32) * 255).astype(np.uint8))
    small = np.asarray(m.resize((rw, rh), Image.BILINEAR), dtype=np.float32) / 255.0
    out = np.zeros((lb.dim, lb.dim), np.float32)
    out[oy : oy + rh, ox : ox + rw] = (small >= 0.5).astype(np.float32)
    return out


def box_mask(box: Box, dim: int) -> np.ndarray:
    """Binary mask of a box in input pixels (used when the subject has no segmentation).

    Matches the original data preparation: coordinates are truncated to
    integers, rows ``[max(y1,0), y2)`` and columns ``[max(x1,0), x2)`` are set.
    """
    out = np.zeros((dim, dim), np.float32)
    x1, y1, x2, y2 = (int(v) for v in box.xyxy)
    out[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = 1.0
    return out
