"""Pictures of what the cropper did: the crop, the subject and the score heatmap.

Shared by ``gencrop crop --visualize``, evaluation reports and dataset views,
so every picture in gencrop uses the same colours: crop = orange, subject =
cyan, ground truth = green.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .data.letterbox import Letterbox
from .geometry import Box

CROP_COLOR = (255, 140, 0)
SUBJECT_COLOR = (0, 200, 255)
TRUTH_COLOR = (60, 220, 60)


def colormap(values: np.ndarray) -> np.ndarray:
    """A perceptually ordered blue -> yellow -> red map for values in [0, 1]; (..., 3) uint8."""
    stops = np.array(
        [[0.0, 0, 0, 130], [0.25, 0, 90, 255], [0.5, 40, 220, 200], [0.75, 255, 220, 0], [1.0, 220, 20, 0]],
        dtype=np.float64,
    )
    v = np.clip(values, 0, 1)
    out = np.stack([np.interp(v, stops[:, 0], stops[:, k]) for k in (1, 2, 3)], axis=-1)
    return out.astype(np.uint8)


def stretch_heatmap(heatmap: np.ndarray) -> np.ndarray:
    """Cell weights stretched from their minimum to their maximum, (rows, cols) float32 in [0, 1].

    The weights of neighbouring cells differ little; the contrast is what a picture should show.
    """
    h = np.asarray(heatmap, dtype=np.float32)
    return (h - float(h.min())) / max(float(h.max() - h.min()), 1e-12)


def heatmap_on_photo(heatmap: np.ndarray, lb: Letterbox, size: tuple[int, int]) -> np.ndarray:
    """Resample the cell heatmap (over the letterboxed input) onto the photo; (H, W) in [0, 1]."""
    h = stretch_heatmap(heatmap)
    grid = Image.fromarray((h * 255).astype(np.uint8)).resize((lb.dim, lb.dim), Image.BILINEAR)
    v = lb.valid
    region = grid.crop((int(v.x), int(v.y), int(v.x2), int(v.y2))).resize(size, Image.BILINEAR)
    return np.asarray(region, dtype=np.float32) / 255.0


def draw_box(draw: ImageDraw.ImageDraw, box: Box, color, width: int) -> None:
    draw.rectangle([box.x, box.y, box.x2 - 1, box.y2 - 1], outline=color, width=width)


def overlay(
    img: Image.Image,
    crop: Box | None = None,
    subject: Box | None = None,
    truths: list[Box] | None = None,
    heatmap: np.ndarray | None = None,
    letterbox: Letterbox | None = None,
    alpha: float = 0.45,
) -> Image.Image:
    """One annotated copy of the photo: heatmap blended in, boxes drawn, outside of crop dimmed."""
    base = img.convert("RGB")
    w, h = base.size
    arr = np.asarray(base, dtype=np.float32)
    if heatmap is not None:
        lb = letterbox or Letterbox(w, h, int(round(max(w, h))))
        heat = heatmap_on_photo(heatmap, lb, (w, h))
        arr = arr * (1 - alpha) + colormap(heat).astype(np.float32) * alpha
    if crop is not None:
        inside = np.zeros((h, w), bool)
        c = crop.clamp(w, h)
        inside[int(c.y) : int(np.ceil(c.y2)), int(c.x) : int(np.ceil(c.x2))] = True
        arr[~inside] *= 0.55
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    width = max(2, round(max(w, h) / 300))
    for t in truths or []:
        draw_box(draw, t, TRUTH_COLOR, width)
    if subject is not None:
        draw_box(draw, subject, SUBJECT_COLOR, width)
    if crop is not None:
        draw_box(draw, crop, CROP_COLOR, width + 1)
    return out


def side_by_side(images: list[Image.Image], height: int = 360, gap: int = 8) -> Image.Image:
    """Images scaled to one height and laid out left to right on a white strip."""
    scaled = [im.resize((max(1, round(im.width * height / im.height)), height), Image.BILINEAR) for im in images]
    total = sum(im.width for im in scaled) + gap * (len(scaled) - 1)
    canvas = Image.new("RGB", (total, height), (255, 255, 255))
    x = 0
    for im in scaled:
        canvas.paste(im, (x, 0))
        x += im.width + gap
    return canvas


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)  # scalable (Pillow >= 10.1)
    except TypeError:
        return ImageFont.load_default()


def legend(width: int, subject_label: str = "subject", heatmap: bool = True, height: int = 28) -> Image.Image:
    """A white strip saying what the colours mean: crop, subject and (optionally) the heatmap's scale."""
    strip = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    font = _font(max(10, height // 2))
    pad, box = 8, height // 2
    x, top = pad, (height - box) // 2

    def swatch(color, label):
        nonlocal x
        draw.rectangle([x, top, x + box, top + box], outline=color, width=3)
        x += box + 5
        draw.text((x, height / 2), label, fill=(0, 0, 0), font=font, anchor="lm")
        x += int(draw.textlength(label, font=font)) + 3 * pad

    swatch(CROP_COLOR, "crop")
    swatch(SUBJECT_COLOR, subject_label)
    if heatmap:
        label = "cell weight: low"
        draw.text((x, height / 2), label, fill=(0, 0, 0), font=font, anchor="lm")
        x += int(draw.textlength(label, font=font)) + 5
        ramp = colormap(np.linspace(0, 1, 80))[None].repeat(box, axis=0)
        strip.paste(Image.fromarray(ramp), (x, top))
        x += ramp.shape[1] + 5
        draw.text((x, height / 2), "high", fill=(0, 0, 0), font=font, anchor="lm")
    return strip


def crop_visualization(img: Image.Image, result, dim: int) -> Image.Image:
    """``gencrop crop --visualize``: [photo with heatmap, subject and crop | the crop itself] over a legend."""
    lb = Letterbox(result.size[0], result.size[1], dim)
    full = img if img.size == tuple(result.size) else img.resize(result.size, Image.BILINEAR)
    annotated = overlay(full, crop=result.box, subject=result.subject, heatmap=result.heatmap, letterbox=lb)
    b = result.box.rounded()
    cropped = full.crop((int(b.x), int(b.y), int(b.x2), int(b.y2)))
    panels = side_by_side([annotated, cropped])
    key = legend(max(panels.width, 420), subject_label=f"subject ({result.subject_source})")
    out = Image.new("RGB", (key.width, panels.height + key.height), (255, 255, 255))
    out.paste(panels, (0, 0))
    out.paste(key, (0, panels.height))
    return out
