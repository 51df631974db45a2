"""Pictures of what the cropper did: the crop, the subject and the heatmap of what decided the crop.

Shared by ``gencrop crop --visualize``, the server's page and evaluation reports,
so every picture in gencrop uses the same colours: crop = orange, subject =
cyan, ground truth = green.

The heatmap: the network's crop is a weighted average of one crop proposed per
cell of a grid over its input, and the weights come from a softmax of the
cells' scores restricted to the subject (:func:`gencrop.modeling.gencrop.subject_softmax`).
Only the subject's cells are weighted by their scores; with the original
formula every other cell gets one and the same fixed weight, whatever its
score (with ``"restricted"``, none). Drawing all weights on one scale showed
that fixed weight as "high" everywhere and the subject as "low", which says
nothing about what the model preferred. So the heatmap colours the cells
whose weight the scores set (the subject's), relative to the top one, leaves
the others uncoloured, and the caption says how much of the crop they carry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


CELL_STRIDE = 16  # input pixels per cell (gencrop.modeling.gencrop.GenCropConfig.stride)


def _cell_span(lo: float, hi: float, grid: int, stride: int) -> np.ndarray:
    """(grid,) bool: the cells ``cells[floor(lo/s):ceil(hi/s)]`` selects, Python slice bounds included."""

    def bound(v: int) -> int:
        return max(v + grid, 0) if v < 0 else min(v, grid)

    idx = np.arange(grid)
    return (idx >= bound(math.floor(lo / stride))) & (idx < bound(math.ceil(hi / stride)))


def subject_cells(subject_input: Box, grid: int, stride: int = CELL_STRIDE) -> np.ndarray:
    """(grid, grid) bool: the cells the network weights by their scores for this subject (input pixels).

    The rule of :func:`gencrop.modeling.gencrop.subject_cell_mask` (a test checks they agree), in
    numpy because pictures are drawn without torch too.
    """
    x1, y1, x2, y2 = (math.trunc(v) for v in subject_input.xyxy)
    rows, cols = _cell_span(y1, y2, grid, stride), _cell_span(x1, x2, grid, stride)
    return rows[:, None] & cols[None, :]


@dataclass
class CellWeights:
    """One crop's cell weights as the network used them, and which of them its scores set."""

    weights: np.ndarray  # (rows, cols), summing to 1
    scored: np.ndarray  # (rows, cols) bool: weighted by the score of the cell's crop (the subject's cells)

    @property
    def share(self) -> float:
        """How much of the crop the scored cells decide (the rest: a plain average of the others' crops)."""
        return float(self.weights[self.scored].sum())

    def relative(self) -> np.ndarray:
        """Scored cells' weights relative to the top one (0-1]; NaN for the cells the scores do not weight."""
        top = float(self.weights[self.scored].max())
        out = np.full(self.weights.shape, np.nan, np.float32)
        out[self.scored] = self.weights[self.scored] / max(top, 1e-30)
        return out

    def caption(self) -> str:
        """What the colours mean, in words."""
        if self.scored.all():
            return "heatmap: each cell's weight in the crop (the cells' crops are averaged), relative to the top cell"
        low = float(np.nanmin(self.relative()))
        what = (
            f"heatmap: each subject cell's weight in the crop (set by the model's score of the cell's crop), "
            f"{low:.0%} to 100% of the top cell"
        )
        if self.share >= 0.995:
            return f"{what}; the other cells have no weight"
        return (
            f"{what}; the subject's cells carry {self.share:.0%} of the crop, every other cell "
            f"the same fixed weight whatever its score (uncoloured)"
        )


def cell_weights(heatmap: np.ndarray, subject_input: Box | None, stride: int = CELL_STRIDE) -> CellWeights:
    """The weights of a crop (``CropResult.heatmap``) with the cells the model's scores weighted.

    Those are the subject's cells; when the other cells' weights differ from each other (a model
    weighting every cell by its score) or the subject covers no cell, every cell counts as scored.
    """
    w = np.asarray(heatmap, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"cell weights must be a square grid; got shape {w.shape}")
    grid = w.shape[0]
    scored = subject_cells(subject_input, grid, stride) if subject_input is not None else np.ones_like(w, bool)
    outside = w[~scored]
    if not scored.any() or (outside.size and outside.max() - outside.min() > 1e-4 * max(outside.max(), 1e-30)):
        scored = np.ones_like(w, bool)
    return CellWeights(w, scored)


def crop_cell_weights(result, dim: int) -> CellWeights:
    """:func:`cell_weights` of a :class:`~gencrop.inference.CropResult` from a network with ``dim`` px input."""
    lb = Letterbox(result.size[0], result.size[1], dim)
    return cell_weights(result.heatmap, lb.to_input(result.subject), dim // result.heatmap.shape[0])


def cells_on_photo(values: np.ndarray, lb: Letterbox) -> np.ndarray:
    """A (rows, cols) cell grid over the letterboxed input resampled onto the photo's pixels
    (``lb.width`` x ``lb.height``), each pixel the value of the cell it lies in (NaN stays NaN)."""
    rows, cols = values.shape
    ys = (lb.offset[1] + (np.arange(lb.height) + 0.5) * lb.resized[1] / lb.height) * rows / lb.dim
    xs = (lb.offset[0] + (np.arange(lb.width) + 0.5) * lb.resized[0] / lb.width) * cols / lb.dim
    r = np.clip(ys.astype(int), 0, rows - 1)
    c = np.clip(xs.astype(int), 0, cols - 1)
    return np.asarray(values, np.float32)[r[:, None], c[None, :]]


def heatmap_rgba(weights: CellWeights) -> np.ndarray:
    """(rows, cols, 4) uint8: the scored cells coloured by :func:`colormap`, the others transparent."""
    rel = weights.relative()
    rgba = np.zeros(rel.shape + (4,), np.uint8)
    rgba[..., :3] = colormap(np.nan_to_num(rel))
    rgba[..., 3] = np.where(np.isnan(rel), 0, 255)
    return rgba


def draw_box(draw: ImageDraw.ImageDraw, box: Box, color, width: int) -> None:
    draw.rectangle([box.x, box.y, box.x2 - 1, box.y2 - 1], outline=color, width=width)


def overlay(
    img: Image.Image,
    crop: Box | None = None,
    subject: Box | None = None,
    truths: list[Box] | None = None,
    heatmap: CellWeights | None = None,
    letterbox: Letterbox | None = None,
    alpha: float = 0.5,
) -> Image.Image:
    """One annotated copy of the photo: heatmap (scored cells only) blended in, boxes drawn, outside of
    crop dimmed. ``letterbox``: the network input the heatmap's cells lie on (the photo's size)."""
    base = img.convert("RGB")
    w, h = base.size
    arr = np.asarray(base, dtype=np.float32)
    if heatmap is not None:
        if letterbox is None:
            raise ValueError("a heatmap needs the letterbox its cells lie on")
        lb = letterbox if (letterbox.width, letterbox.height) == (w, h) else Letterbox(w, h, letterbox.dim)
        heat = cells_on_photo(heatmap.relative(), lb)
        on = ~np.isnan(heat)
        arr[on] = arr[on] * (1 - alpha) + colormap(heat[on]).astype(np.float32) * alpha
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


def _wrap(text: str, draw: ImageDraw.ImageDraw, font, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


def legend(width: int, subject_label: str = "subject", heatmap: str | None = None, height: int = 28) -> Image.Image:
    """A white strip saying what the colours mean: crop, subject and, with ``heatmap`` (its caption,
    :meth:`CellWeights.caption`), the heatmap's scale and what it shows in words."""
    font = _font(max(10, height // 2))
    pad, box = 8, height // 2
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    caption = _wrap(heatmap, measure, font, width - 2 * pad) if heatmap else []
    line_h = int(height * 0.8)
    strip = Image.new("RGB", (width, height + line_h * len(caption) + (pad // 2 if caption else 0)), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
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
        label = "cell weight: 0"
        draw.text((x, height / 2), label, fill=(0, 0, 0), font=font, anchor="lm")
        x += int(draw.textlength(label, font=font)) + 5
        ramp = colormap(np.linspace(0, 1, 80))[None].repeat(box, axis=0)
        strip.paste(Image.fromarray(ramp), (x, top))
        x += ramp.shape[1] + 5
        draw.text((x, height / 2), "top cell", fill=(0, 0, 0), font=font, anchor="lm")
        for i, line in enumerate(caption):
            draw.text((pad, height + i * line_h), line, fill=(0, 0, 0), font=font, anchor="lt")
    return strip


def subject_label(result) -> str:
    """How a crop's subject came about, for legends: given, or found (what, how sure, kept or not)."""
    if result.subject_source in ("given", "mask"):
        return f"subject ({result.subject_source})"
    what = result.subject_class or result.subject_source
    if result.subject_score is not None:
        what += f" {result.subject_score:.2f}"
    return f"subject found: {what}, {'kept in the crop' if result.subject_kept else 'not kept'}"


def crop_visualization(img: Image.Image, result, dim: int) -> Image.Image:
    """``gencrop crop --visualize``: [photo with heatmap, subject and crop | the crop itself] over a legend."""
    lb = Letterbox(result.size[0], result.size[1], dim)
    full = img if img.size == tuple(result.size) else img.resize(result.size, Image.BILINEAR)
    weights = crop_cell_weights(result, dim)
    annotated = overlay(full, crop=result.box, subject=result.subject, heatmap=weights, letterbox=lb)
    b = result.box.rounded()
    cropped = full.crop((int(b.x), int(b.y), int(b.x2), int(b.y2)))
    panels = side_by_side([annotated, cropped])
    key = legend(max(panels.width, 560), subject_label=subject_label(result), heatmap=weights.caption())
    out = Image.new("RGB", (key.width, panels.height + key.height), (255, 255, 255))
    out.paste(panels, (0, 0))
    out.paste(key, (0, panels.height))
    return out
