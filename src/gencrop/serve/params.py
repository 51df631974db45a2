"""The query of ``POST /v1/crop`` checked before anything else is done: no unknown names, shapes that
can be cut, image answers that the format can hold and that fit the output limit."""

from __future__ import annotations

import math

from ..geometry import Box
from .errors import ApiError

CROP_PARAMETERS = ("aspect", "size", "area", "subject", "allow_subject_cut", "output", "heatmap", "quality")
MAX_SHAPES = 16
MAX_ASPECT = 100.0  # from 1:100 to 100:1
# The largest side each image format can be written with (Pillow's JPEG writer; WebP's own limit).
FORMAT_MAX_SIDE = {"jpeg": 65_500, "webp": 16_383, "png": 2**31 - 1}


def check_names(given, known=CROP_PARAMETERS) -> None:
    """400 naming every query parameter that is not one of ``known`` (a typo must not pass silently)."""
    unknown = sorted({name for name in given if name not in known})
    if unknown:
        raise ApiError(
            400,
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(known)}",
        )


def parse_shapes(aspects: list[str], size: str | None, area: float | None) -> tuple:
    """The requested shapes (``gencrop.shapes.Shape``); the free crop when none is asked."""
    from ..shapes import Shape

    specs = [a for a in aspects if a.strip()] + ([size] if size else [])
    if len(specs) > MAX_SHAPES:
        raise ApiError(400, f"at most {MAX_SHAPES} shapes per request, got {len(specs)}")
    shapes = []
    for spec in specs or ["free"]:
        out_of_range = ApiError(400, f"aspect/size {spec!r}: the aspect ratio must be between 1:100 and 100:1")
        try:
            shape = Shape.parse(spec.strip(), area)
            ratio = shape.ratio[0] / shape.ratio[1] if shape.ratio else 1.0
        except ValueError as e:
            raise ApiError(400, f"aspect/size {spec!r}: {e}") from None
        except OverflowError:
            raise out_of_range from None
        if not 1 / MAX_ASPECT <= ratio <= MAX_ASPECT:
            raise out_of_range
        shapes.append(shape)
    return tuple(shapes)


def parse_subject(text: str | None) -> Box | None:
    if text is None or not text.strip():
        return None
    try:
        box = Box.parse(text)
    except (ValueError, OverflowError) as e:
        raise ApiError(400, f"subject: {e}") from None
    if not all(math.isfinite(v) and abs(v) < 1e9 for v in box.xywh):
        raise ApiError(400, f"subject: values must be finite numbers of pixels; got {text!r}")
    return box


def check_output_size(width: int, height: int, output: str, max_pixels: int, what: str = "the output") -> None:
    """400 when an image answer of ``width`` x ``height`` is over the server's pixel limit or its format's."""
    if output == "json":
        return
    if width * height > max_pixels:
        raise ApiError(
            400,
            f"{what} would be {width}x{height} ({width * height / 1e6:.1f} megapixels); "
            f"image answers are limited to {max_pixels / 1e6:.1f} megapixels",
        )
    side = FORMAT_MAX_SIDE[output]
    if max(width, height) > side:
        raise ApiError(
            400,
            f"{what} would be {width}x{height}; {output} images are at most {side} pixels on a side "
            f"(ask for another output or a smaller size)",
        )
