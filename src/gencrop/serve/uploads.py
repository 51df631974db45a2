"""Turning uploaded bytes into a photo prepared for the model, refusing what must not be decoded.

The body is read within the request's time limit (:func:`read_photo`). The
header is read first: an unknown format is refused (415), and a photo with
more pixels than allowed (a decompression bomb: a small PNG can describe
gigapixels) is refused (413, always with the server's own limit in the
message) before any pixel is decoded, as is a JPEG whose data is too short
to hold the pixels its header claims. Only then does the Cropper decode it,
exactly as it decodes a file on disk (a large JPEG at reduced size for the
network; the full size only when the crop itself is sent back), upright and
8-bit RGB; corrupt or truncated data is 422, and so is a decode whose size is
not the header's.

This runs in an image worker thread (:mod:`.workers`), so photos are decoded
and their subjects found while the model thread runs the network on earlier ones.
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image, UnidentifiedImageError

from ..io import ImageReadError
from .deadlines import Deadline
from .errors import ApiError

# What browsers and cameras produce (phones' MPO files open as JPEG).
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
FORMAT_NAMES = "JPEG, PNG, WebP, BMP, TIFF or GIF"
UPLOAD_FIELD = "photo"


async def read_photo(request, deadline: Deadline) -> tuple[bytes, str]:
    """The uploaded photo's bytes and file name, read from the multipart body before ``deadline``.

    A body that does not arrive in time is 408 (the connection is closed);
    a missing photo or any other form field is 400."""
    from starlette.datastructures import UploadFile
    from starlette.requests import ClientDisconnect

    try:
        async with asyncio.timeout(max(deadline.left(), 0.001)):
            form = await request.form(max_files=1, max_fields=8)
            try:
                photo = form.get(UPLOAD_FIELD)
                others = sorted({k for k in form.keys() if k != UPLOAD_FIELD})
                if others:
                    raise ApiError(400, f"unknown form field(s) {', '.join(map(repr, others))}: send only 'photo'")
                if not isinstance(photo, UploadFile):
                    raise ApiError(400, "missing photo: send it as the multipart file field 'photo'")
                return await photo.read(), photo.filename or ""
            finally:
                await form.close()
    except TimeoutError:
        raise ApiError(
            408, f"the upload did not arrive within the time limit ({deadline.seconds:g} s)", close=True
        ) from None
    except ClientDisconnect:
        raise ApiError(400, "the client closed the connection during the upload", close=True) from None


def header_size(data: bytes) -> tuple[str, int, int, Image.Image]:
    """``(format, width, height, opened image)`` from the header alone, however many pixels it claims
    (PIL's own decompression-bomb refusal would answer with its limit instead of the server's)."""
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError:
        img = _open_unchecked(data)
    return img.format or "", img.size[0], img.size[1], img


def _open_unchecked(data: bytes) -> Image.Image:
    for fmt in FORMATS:
        factory, accept = Image.OPEN[fmt]
        if accept is None or accept(data[:16]) is True:
            return factory(io.BytesIO(data), "")
    raise UnidentifiedImageError("no format accepted the header")


def jpeg_too_short(img: Image.Image, data: bytes) -> bool:
    """Whether a JPEG cannot hold the pixels its header claims.

    Huffman-coded JPEGs (baseline and progressive) spend at least one bit per
    8x8 block of every component; a file with fewer bits than blocks has lost
    its data (libjpeg would fill the rest with grey). Arithmetic coding has no
    such floor and is not judged."""
    if img.format != "JPEG" or not getattr(img, "layer", None) or _jpeg_frame_marker(data) not in HUFFMAN_FRAMES:
        return False
    width, height = img.size
    hmax = max(h for _, h, _, _ in img.layer) or 1
    vmax = max(v for _, _, v, _ in img.layer) or 1
    blocks = sum(-(-width * h // (8 * hmax)) * -(-height * v // (8 * vmax)) for _, h, v, _ in img.layer)
    return len(data) * 8 < blocks


HUFFMAN_FRAMES = (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7)  # SOFn markers of Huffman-coded frames


def _jpeg_frame_marker(data: bytes) -> int | None:
    """The JPEG's SOFn marker (its coding), found by walking the segments before the first frame."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return marker
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
        else:
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _decoded_as_header(decoded: tuple[int, int], size: tuple[int, int]) -> bool:
    """Whether a decode of ``decoded`` pixels is the ``size`` photo, whole or reduced by a power of two,
    upright or turned a quarter (EXIF orientation)."""
    for w, h in (size, size[::-1]):
        f = 1
        while f <= 64:
            if abs(-(-w // f) - decoded[0]) <= 1 and abs(-(-h // f) - decoded[1]) <= 1:
                return True
            f *= 2
    return False


def check_upload(data: bytes, *, max_pixels: int, min_side: int = 1) -> tuple[str, tuple[int, int]]:
    """The photo's format and stored size, after its header passed the checks; an :class:`ApiError` says why not.

    No EXIF is read here: a PNG's may follow its pixel data, which PIL would decode to find it."""
    if not data:
        raise ApiError(422, "the photo is empty (0 bytes)")
    # PIL warns of a possible decompression bomb above its own limit (once per process, in the
    # log); the limit that answers is ours, below. The warning is not silenced here, as
    # warnings.catch_warnings is not safe in threads; where warnings are errors it is a 413 too.
    try:
        fmt, width, height, img = header_size(data)
        with img:
            too_short = jpeg_too_short(img, data)
    except UnidentifiedImageError:
        raise ApiError(415, f"not a photo gencrop can read: send a {FORMAT_NAMES} file") from None
    except Image.DecompressionBombWarning:
        raise ApiError(413, f"the photo has more pixels than the limit of {max_pixels / 1e6:.1f} megapixels") from None
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
    if too_short:
        raise ApiError(
            422, f"the JPEG's header says {width}x{height} pixels but its {len(data)} bytes cannot hold them"
        )
    return fmt, (width, height)


def prepare_upload(
    cropper,
    data: bytes,
    subject=None,
    *,
    full: bool,
    max_pixels: int,
    min_side: int = 1,
    deadline: Deadline | None = None,
):
    """``(PreparedPhoto, full-size upright RGB photo or None)`` for the uploaded ``data``.

    ``full``: also decode the photo at full size (to cut the crop from). A
    subject that does not fit the photo is 400; no subject found is 422.
    """
    from ..inference import SubjectRequired

    if deadline is not None:  # the thread may have started late
        deadline.check("before the photo was decoded")
    fmt, size = check_upload(data, max_pixels=max_pixels, min_side=min_side)
    source = io.BytesIO(data)
    source.name = f"the uploaded {fmt} photo"  # what a decoding error names
    try:
        if full:
            prepared, decoded = cropper.prepare_full(source, subject)
        else:
            prepared, decoded = cropper.prepare(source, subject), None
    except ImageReadError as e:  # truncated or corrupt pixel data
        raise ApiError(422, str(e)) from None
    except SubjectRequired as e:
        raise ApiError(422, str(e)) from None
    except ValueError as e:  # the Cropper's word on a bad subject
        raise ApiError(400, str(e)) from None
    actual = decoded.size if decoded is not None else prepared.image.size
    if not (_decoded_as_header(prepared.size, size) and _decoded_as_header(actual, size)):
        raise ApiError(
            422, f"the photo decodes to {actual[0]}x{actual[1]} pixels but its header says {size[0]}x{size[1]}"
        )
    return prepared, decoded
