"""What the network learns from: a random view of a canvas that contains the photographer's frame.

The frame (the original photo inside its outpainted canvas, or an expert crop
inside a real photo) is the answer; the view is the question. Views are
enlargements of the frame, 1-2x its long side, with common photo aspect
ratios, so the network learns to undo a range of loose compositions.

Every step is a closed-form draw from the feasible range (never a retry
loop): a frame that nearly fills its canvas simply gets smaller, fewer kinds
of enlargement, and in the worst case the whole canvas as its view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from ..geometry import Box

__all__ = [
    "PORTRAIT_RATIOS",
    "LANDSCAPE_RATIOS",
    "ViewSampler",
    "jitter_box",
    "photometric_augment",
]

# short side / long side of the view; portrait frames get portrait (or square) views.
PORTRAIT_RATIOS = (1.0, 4 / 5, 3 / 4, 5 / 7, 2 / 3)
LANDSCAPE_RATIOS = (1.0, 4 / 5, 3 / 4, 5 / 7, 2 / 3, 9 / 16)


@dataclass(frozen=True)
class ViewSampler:
    """Draws a view (integer canvas pixels) that contains the frame and lies inside the canvas."""

    max_scale: float = 2.0  # long side of the view over the frame's long side
    invert_prob: float = 0.2  # a portrait frame gets a landscape view this often ...
    invert_max_scale: float = 1.1  # ... at most this much taller than the frame
    edge_prob: float = 0.25  # push the view to one end of its allowed position range
    # Use the whole canvas as the view this often. Real-context data (expert crops
    # inside real photos) is judged on whole photos, so this matches the test
    # distribution; outpainted canvases (the paper's data) keep it at 0.
    whole_canvas_prob: float = 0.0

    # -- feasible ranges -------------------------------------------------------
    @staticmethod
    def _long_side_range(
        fw: float, fh: float, width: int, height: int, ratio: float, portrait_view: bool, max_long: float
    ) -> tuple[float, float] | None:
        """Allowed long side L of a view with short/long ``ratio``: contains the frame, fits the canvas."""
        if portrait_view:  # w = ratio * L, h = L
            lo, hi = max(fh, fw / ratio), min(height, width / ratio)
        else:  # w = L, h = ratio * L
            lo, hi = max(fw, fh / ratio), min(width, height / ratio)
        hi = min(hi, max_long)
        return (lo, hi) if hi >= lo else None

    def options(self, frame: Box, width: int, height: int, inverted: bool = False):
        """The feasible ``(ratio, portrait_view, lo, hi)`` choices for this frame."""
        fw, fh = frame.w, frame.h
        portrait = fh > fw
        if inverted:
            # landscape view of a portrait frame; its height is at most invert_max_scale x the frame's
            choices = [(r, False, fh * self.invert_max_scale / r) for r in LANDSCAPE_RATIOS]
        elif portrait:
            choices = [(r, True, self.max_scale * fh) for r in PORTRAIT_RATIOS]
        else:
            choices = [(r, False, self.max_scale * fw) for r in LANDSCAPE_RATIOS]
        out = []
        for r, pv, max_long in choices:
            rng = self._long_side_range(fw, fh, width, height, r, pv, max_long)
            if rng is not None:
                out.append((r, pv) + rng)
        return out

    def room(self, frame: Box, width: int, height: int) -> float:
        """The largest enlargement (view long side / frame long side) any option allows; 1 = none."""
        opts = self.options(frame, width, height)
        if not opts:
            return 1.0
        return max(hi for *_, hi in opts) / max(frame.w, frame.h)

    # -- drawing ---------------------------------------------------------------
    def _position(self, lo: int, hi: int, rng: np.random.Generator) -> int:
        if hi <= lo:
            return lo
        if rng.random() < self.edge_prob:
            return lo if rng.random() < 0.5 else hi
        return int(rng.integers(lo, hi + 1))

    def sample(
        self, frame: Box, width: int, height: int, rng: np.random.Generator, invert: bool = True
    ) -> tuple[Box, bool]:
        """A view for ``frame`` in a ``width`` x ``height`` canvas; returns ``(view, fell_back)``.

        ``fell_back`` is True when no listed aspect ratio fits and the whole
        canvas is used as the view.
        """
        frame = _integer_frame(frame, width, height)
        if self.whole_canvas_prob > 0 and rng.random() < self.whole_canvas_prob:
            return Box(0, 0, width, height), False
        opts = []
        if invert and frame.h > frame.w and rng.random() < self.invert_prob:
            opts = self.options(frame, width, height, inverted=True)
        if not opts:
            opts = self.options(frame, width, height)
        if not opts:
            return Box(0, 0, width, height), True
        ratio, portrait_view, lo, hi = opts[int(rng.integers(len(opts)))]
        long_side = float(rng.uniform(lo, hi)) if hi > lo else lo
        short_side = ratio * long_side
        vw, vh = (short_side, long_side) if portrait_view else (long_side, short_side)
        # round outwards so the frame stays inside, but never past the canvas
        vw = int(min(max(math.ceil(vw - 1e-6), frame.w), width))
        vh = int(min(max(math.ceil(vh - 1e-6), frame.h), height))
        x = self._position(int(max(0, frame.x2 - vw)), int(min(frame.x, width - vw)), rng)
        y = self._position(int(max(0, frame.y2 - vh)), int(min(frame.y, height - vh)), rng)
        return Box(x, y, vw, vh), False


def _integer_frame(frame: Box, width: int, height: int) -> Box:
    """The frame on the pixel grid, inside the canvas."""
    x1, y1 = max(0, int(math.floor(frame.x))), max(0, int(math.floor(frame.y)))
    x2, y2 = min(width, int(math.ceil(frame.x2))), min(height, int(math.ceil(frame.y2)))
    return Box(x1, y1, max(1, x2 - x1), max(1, y2 - y1))


def jitter_box(box: Box, amount: float, rng: np.random.Generator) -> Box:
    """Move each edge by up to ``amount`` of the box's size: subjects at test time come from a detector."""
    d = rng.uniform(-amount, amount, 4) * np.array([box.w, box.h, box.w, box.h])
    x1, y1, x2, y2 = np.asarray(box.xyxy) + d
    if x2 <= x1:
        x1, x2 = box.x, box.x2
    if y2 <= y1:
        y1, y2 = box.y, box.y2
    return Box.from_xyxy(x1, y1, x2, y2)


def photometric_augment(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Colour jitter, occasional grayscale, blur and elastic warp (geometry-free; boxes stay valid).

    Runs on the already-resized view (at most ``dim`` pixels), so it is cheap.
    """
    if rng.random() < 0.8:
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.7, 1.3))
        img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.7, 1.3))
        img = ImageEnhance.Color(img).enhance(rng.uniform(0.7, 1.3))
    if rng.random() < 0.1:
        img = img.convert("L").convert("RGB")
    if rng.random() < 0.2:
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.1, 1.5))))
    if rng.random() < 0.1:
        img = elastic_warp(img, rng)
    return img


def elastic_warp(img: Image.Image, rng: np.random.Generator, alpha: float = 0.02, sigma: float = 0.05) -> Image.Image:
    """Smooth random displacement of up to about ``alpha`` of the image size (local, small)."""
    w, h = img.size
    # a coarse random field, smoothly upsampled: a cheap stand-in for a blurred per-pixel field
    cells = max(2, int(round(1 / sigma)))
    field = rng.uniform(-1, 1, (2, cells, cells)).astype(np.float32)
    dx = np.asarray(Image.fromarray(field[0]).resize((w, h), Image.BICUBIC)) * alpha * w
    dy = np.asarray(Image.fromarray(field[1]).resize((w, h), Image.BICUBIC)) * alpha * h
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    sx = np.clip(np.rint(gx + dx), 0, w - 1).astype(np.intp)
    sy = np.clip(np.rint(gy + dy), 0, h - 1).astype(np.intp)
    arr = np.asarray(img)
    return Image.fromarray(arr[sy, sx])
