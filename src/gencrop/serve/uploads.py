"""Turning uploaded bytes into an upright RGB photo, refusing what must not be decoded.

The header is read first: an unknown format is refused (415) and a photo with
more pixels than allowed (a decompression bomb: a small PNG can describe
gigapixels) is refused (413) before any pixel is decoded. Only then is the
photo decoded in full (422 when the data is corrupt or truncated) and made
upright and 8-bit RGB by :func:`gencrop.io.load_image`, as for files.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from ..io import load_image
from .errors import ApiError

# What browsers and cameras produce (phones' MPO files open as JPEG).
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
FORMAT_NAMES = "JPEG, PNG, WebP, BMP, TIFF or GIF"


def decode_photo(data: bytes, *, max_pixels: int, min_side: int = 1) -> Image.Image:
    """The photo in ``data`` as an upright RGB image, or an :class:`ApiError` saying why not."""
    if not data:
        raise ApiError(422, "the photo is empty (0 bytes)")
    with warnings.catch_warnings():
        # we check the size ourselves, against our own limit, before decoding
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=FORMATS)
        except UnidentifiedImageError:
            raise ApiError(415, f"not a photo gencrop can read: send a {FORMAT_NAMES} file") from None
        except Image.DecompressionBombError as e:
            raise ApiError(413, f"the photo has too many pixels ({e})") from None
        except Exception as e:  # noqa: BLE001 - PIL raises many types for corrupt headers
            raise ApiError(422, f"cannot read the photo's header ({type(e).__name__}: {e})") from None
        width, height = img.size
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
        try:
            photo, _ = load_image(img)
        except Exception as e:  # noqa: BLE001 - truncated or corrupt pixel data
            raise ApiError(422, f"cannot decode the {img.format} photo ({type(e).__name__}: {e})") from None
    return photo
