"""Contact sheets: many pictures on one PNG, each with a few lines of text in a colour.

What the engine's stages draw for a person to check (quality rankings, outpainted canvases);
below every stage that draws one.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

__all__ = ["contact_sheet"]


def _font(size: int):
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1: bitmap font only
        return ImageFont.load_default()


def contact_sheet(
    tiles: Sequence[tuple[Image.Image, Sequence[str], tuple[int, int, int]]], thumb: int = 192, columns: int = 6
) -> Image.Image:
    """A grid of ``(image, text lines, colour)`` tiles: each image fitted in a square, text below."""
    font = _font(max(10, thumb // 14))
    line_h = max(12, thumb // 12)
    n_lines = max((len(t[1]) for t in tiles), default=1)
    cell_w, cell_h = thumb + 8, thumb + 8 + n_lines * line_h
    columns = max(1, min(columns, len(tiles)))
    rows = max(1, -(-len(tiles) // columns))
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, (img, lines, colour) in enumerate(tiles):
        x0, y0 = (i % columns) * cell_w + 4, (i // columns) * cell_h + 4
        small = img.copy()
        small.thumbnail((thumb, thumb))
        sheet.paste(small, (x0 + (thumb - small.width) // 2, y0 + (thumb - small.height) // 2))
        draw.rectangle([x0 - 2, y0 - 2, x0 + thumb + 1, y0 + thumb + 1], outline=colour, width=2)
        for j, text in enumerate(lines):
            while len(text) > 4 and draw.textlength(text, font=font) > thumb:
                text = text[:-4] + "..."
            draw.text((x0, y0 + thumb + 4 + j * line_h), text, fill=colour, font=font)
    return sheet
