"""Turning uploaded bytes into a photo prepared for the model, refusing what must not be decoded.

The header is read first: an unknown format is refused (415) and a photo with
more pixels than allowed (a decompression bomb: a small PNG can describe
gigapixels) is refused (413) before any pixel is decoded. Only then does the
Cropper decode it, exactly as it decodes a file on disk (a large JPEG at
reduced size for the network; the full size only when the crop itself is
sent back), upright and 8-bit RGB; corrupt or truncated data is 422.

This runs in the request's thread, so photos are decoded and their subjects
found while the model thread runs the network on earlier ones.
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from ..io import ImageReadError
from .errors import ApiError

# What browsers and cameras produce (phones' MPO files open as JPEG).
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
FORMAT_NAMES = "JPEG, PNG, WebP, BMP, TIFF or GIF"


def check_upload(data: bytes, *, max_pixels: int, min_side: int = 1) -> str:
    """The photo's format, after its header passed the checks; an :class:`ApiError` says why not."""
    if not data:
        raise ApiError(422, "the photo is empty (0 bytes)")
    # PIL warns of a possible decompression bomb above its own limit (once per process, in the
    # log); the limit that answers is ours, below. The warning is not silenced here, as
    # warnings.catch_warnings is not safe in threads; where warnings are errors it is a 413 too.
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as img:
            width, height, fmt = img.size[0], img.size[1], img.format
    except UnidentifiedImageError:
        raise ApiError(415, f"not a photo gencrop can read: send a {FORMAT_NAMES} file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ApiError(413, f"the photo has too many pixels ({e})") from None
    except Exception as e:  # noqa: BLE001 - PIL raises many types for corrupt headers
        raise ApiError(422, f"cannot read the photo's header ({type(e).__name__}: {e})") from None
    if width * height > max_pixels:
        raise ApiError(
            413,
            f"the photo is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
            f"the limit is {max_pixels / 1e6:.1f} megapixels",
        )
    if min(width, height) < min_side:
        raise ApiError(
            422,
            f"the photo is {width}x{height} pixels; at least {min_side} pixels on each side are needed to crop it",
        )
    return fmt


def prepare_upload(cropper, data: bytes, subject=None, *, full: bool, max_pixels: int, min_side: int = 1):
    """``(PreparedPhoto, full-size upright RGB photo or None)`` for the uploaded ``data``.

    ``full``: also decode the photo at full size (to cut the crop from). A
    subject that does not fit the photo is 400; no subject found is 422.
    """
    from ..inference import SubjectRequired

    fmt = check_upload(data, max_pixels=max_pixels, min_side=min_side)
    source = io.BytesIO(data)
    source.name = f"the uploaded {fmt} photo"  # what a decoding error names
    try:
        prepared = cropper.prepare(source, subject, cut=full)
        return prepared, (prepared.photo if full else None)
    except ImageReadError as e:  # truncated or corrupt pixel data
        raise ApiError(422, str(e)) from None
    except SubjectRequired as e:
        raise ApiError(422, str(e)) from None
    except ValueError as e:  # the Cropper's word on a bad subject
        raise ApiError(400, str(e)) from None
