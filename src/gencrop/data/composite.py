"""Composite training canvases: the given subject, not the photo, decides the crop.

In real-context data the subject is chosen inside the expert's frame, so it
tells the network nothing the photo alone does not show, and a network
trained on it learns to ignore the subject. A composite lays two to four
photos out on one canvas, each with its own frame; the target is the frame of
the photo whose subject is given. Only the subject (its box and mask) can
tell the network which of the frames to return.

Layouts are random guillotine cuts of a canvas of a common photo aspect
ratio; each photo is fitted into its cell at a random scale and place, over a
blurred copy of itself, so the cells do not end in flat borders that would
give the layout away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from ..geometry import Box

__all__ = ["CANVAS_ASPECTS", "Tile", "guillotine_layout", "place_tiles"]

# width / height of the composite canvas
CANVAS_ASPECTS = (3 / 2, 4 / 3, 1.0, 3 / 4, 2 / 3, 16 / 9)
# the number of photos on a canvas, and how often each count is drawn
TILE_COUNTS = (2, 3, 4)
TILE_COUNT_PROBS = (0.5, 0.25, 0.25)


@dataclass(frozen=True)
class Tile:
    """Where one photo lands on the canvas: photo pixels ``p`` go to ``p * scale + offset``."""

    cell: Box  # the layout cell (canvas pixels)
    placed: Box  # the photo's rectangle inside the cell (whole canvas pixels)
    scale: tuple[float, float]  # (x, y): the placed size over the photo's size
    offset: tuple[float, float]

    def to_canvas(self, box: Box) -> Box:
        return box.scale(*self.scale).translate(*self.offset)


def guillotine_layout(count: int, width: float, height: float, rng: np.random.Generator) -> list[Box]:
    """``count`` cells covering a ``width`` x ``height`` canvas: the largest cell is cut across its
    longer side at 35-65% until there are enough."""
    cells = [Box(0.0, 0.0, float(width), float(height))]
    while len(cells) < count:
        i = max(range(len(cells)), key=lambda k: cells[k].area)
        c = cells.pop(i)
        t = float(rng.uniform(0.35, 0.65))
        if c.w >= c.h:
            a, b = Box(c.x, c.y, c.w * t, c.h), Box(c.x + c.w * t, c.y, c.w * (1 - t), c.h)
        else:
            a, b = Box(c.x, c.y, c.w, c.h * t), Box(c.x, c.y + c.h * t, c.w, c.h * (1 - t))
        cells[i:i] = [a, b]
    return cells


def fit_in_cell(size: tuple[int, int], cell: Box, rng: np.random.Generator, min_fill: float = 0.8) -> Tile:
    """A photo of ``size`` fitted inside ``cell`` at 80-100% of the largest fitting scale, placed at random."""
    w, h = size
    s = min(cell.w / w, cell.h / h) * float(rng.uniform(min_fill, 1.0))
    pw, ph = max(1, int(w * s)), max(1, int(h * s))
    x = int(math.ceil(cell.x)) + int(rng.integers(0, max(0, int(cell.x2) - int(math.ceil(cell.x)) - pw) + 1))
    y = int(math.ceil(cell.y)) + int(rng.integers(0, max(0, int(cell.y2) - int(math.ceil(cell.y)) - ph) + 1))
    return Tile(cell, Box(x, y, pw, ph), (pw / w, ph / h), (float(x), float(y)))


def place_tiles(sizes: list[tuple[int, int]], canvas: tuple[int, int], rng: np.random.Generator) -> list[Tile]:
    """One tile per photo size on a canvas of ``canvas`` (w, h) pixels; cells are assigned at random."""
    cells = guillotine_layout(len(sizes), canvas[0], canvas[1], rng)
    order = rng.permutation(len(cells))
    return [fit_in_cell(size, cells[int(k)], rng) for size, k in zip(sizes, order)]


def paint_tile(canvas: Image.Image, photo: Image.Image, tile: Tile) -> None:
    """Paint ``photo`` (any decode size) into its tile: a blurred cover of the cell, then the photo."""
    cx1, cy1 = int(math.floor(tile.cell.x)), int(math.floor(tile.cell.y))
    cx2, cy2 = int(math.ceil(tile.cell.x2)), int(math.ceil(tile.cell.y2))
    cw, ch = max(1, cx2 - cx1), max(1, cy2 - cy1)
    cover = photo.resize((max(1, cw // 8), max(1, ch // 8)), Image.BILINEAR).resize((cw, ch), Image.BILINEAR)
    canvas.paste(cover.filter(ImageFilter.GaussianBlur(2)), (cx1, cy1))
    p = tile.placed
    canvas.paste(photo.resize((int(p.w), int(p.h)), Image.BILINEAR), (int(p.x), int(p.y)))


def canvas_size(dim: int, rng: np.random.Generator) -> tuple[int, int]:
    """A canvas of a common photo aspect ratio whose long side is ``dim`` (it fills the input like a photo)."""
    aspect = CANVAS_ASPECTS[int(rng.integers(len(CANVAS_ASPECTS)))]
    if aspect >= 1:
        return dim, max(1, int(round(dim / aspect)))
    return max(1, int(round(dim * aspect))), dim


def tile_count(rng: np.random.Generator) -> int:
    return int(rng.choice(TILE_COUNTS, p=TILE_COUNT_PROBS))
