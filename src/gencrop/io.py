"""Reading and writing: JSON (plain or gzipped), images, masks, npz, all atomic.

Long jobs in gencrop are killed and resumed; every file is therefore written
under a temporary name in the destination folder and renamed into place, so
a reader never sees a half-written file and "the file exists" means "done".
"""

from __future__ import annotations

import contextlib
import gzip
import io as _io
import json
import math
import os
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from .errors import DataError

__all__ = [
    "ImageReadError",
    "image_size",
    "atomic_path",
    "atomic_open",
    "read_json",
    "write_json",
    "json_safe",
    "load_image",
    "to_rgb",
    "save_image",
    "save_npz",
    "load_npz",
    "polygon_to_mask",
    "mask_to_polygon",
    "IMAGE_EXTENSIONS",
    "list_images",
    "ImageScan",
    "scan_images",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

# The process umask (read once: os.umask can only be read by setting it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)

# Decompression-bomb guard: large camera photos are fine, absurd ones are not.
Image.MAX_IMAGE_PIXELS = 250_000_000


class ImageReadError(DataError):
    """A photo could not be read (missing, corrupt, or an unsupported format)."""


# ----------------------------------------------------------------------------
# atomic writes
# ----------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary name keeps the final suffix (``.tmp-XXXX.jpg``) so that
    libraries that choose a format by suffix still work. On any exception the
    temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".gz") else path.suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes 0600 and some writers recreate the file: give the result normal permissions
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[Any]:
    """``open`` that writes to a temporary file and renames it into place."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


# ----------------------------------------------------------------------------
# JSON
# ----------------------------------------------------------------------------
def read_json(path: str | os.PathLike) -> Any:
    """Read ``.json`` or gzipped ``.json.gz``; a malformed file is a :class:`DataError` naming it."""
    path = Path(path)
    gz = path.name.endswith(".gz")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except IsADirectoryError:
        raise DataError("is a folder, not a JSON file", path) from None
    if gz and raw[:2] != b"\x1f\x8b":
        hint = " (plain JSON under a .gz name?)" if raw.lstrip()[:1] in (b"{", b"[") else ""
        raise DataError(f"not gzip-compressed{hint}", path)
    try:
        text = (gzip.decompress(raw) if gz else raw).decode("utf-8")
        return json.loads(text)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"truncated or corrupt gzip data ({type(e).__name__}: {e})", path) from None
    except UnicodeDecodeError:
        raise DataError("not UTF-8 text (not a JSON file?)", path) from None
    except json.JSONDecodeError as e:
        what = "empty file" if not text.strip() else f"not valid JSON ({e})"
        raise DataError(what, path) from None


def json_safe(obj: Any) -> Any:
    """NaN and infinities are not JSON: undefined figures become ``null``."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    """Atomically write ``obj`` as JSON; gzip when the name ends in ``.gz``."""
    text = json.dumps(obj, indent=indent)
    data = text.encode("utf-8")
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with atomic_open(path, "wb") as f:
        f.write(data)


# ----------------------------------------------------------------------------
# images
# ----------------------------------------------------------------------------
def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode (L, LA, P, RGBA, I;16, I, F, CMYK, YCbCr) to 8-bit RGB.

    Transparent pixels are composited on white, which is what a viewer shows;
    16-bit and float images are rescaled from their own range to 0-255.
    """
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16"):
            arr = arr / 65535.0 * 255.0
        else:
            lo, hi = float(arr.min()), float(arr.max())
            if hi > 255 or lo < 0:
                arr = (arr - lo) / max(hi - lo, 1e-12) * 255.0
        return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def load_image(source, *, min_side: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """Open a photo as upright 8-bit RGB.

    ``source`` is a path, an open binary file, a PIL image or an array (HxW, HxWx3, HxWx4; uint8,
    uint16 or float in [0, 1]). EXIF orientation is applied. With
    ``min_side``, JPEGs are decoded at a reduced size (DCT scaling, much faster
    for large photos) as long as the shorter side stays >= ``min_side``; an
    image in memory is reduced by the same factor.

    Returns ``(image, (width, height))`` where the size is that of the full,
    upright photo: boxes are always given in those pixels.
    """
    if isinstance(source, Image.Image):
        img = source
        img.load()
    elif isinstance(source, np.ndarray):
        img = _array_to_image(source)
    elif hasattr(source, "read"):  # an open binary file, e.g. an upload's BytesIO
        return _decode(source, getattr(source, "name", None) or "photo", min_side)
    else:
        path = Path(source)
        if not path.exists():
            raise ImageReadError(f"{path}: no such file")
        if path.is_dir():
            raise ImageReadError(f"{path}: is a folder, not a photo")
        if path.stat().st_size == 0:
            raise ImageReadError(f"{path}: empty file (0 bytes)")
        return _decode(path, str(path), min_side)
    img = to_rgb(upright(img))
    return _reduce(img, min_side), img.size


def _decode(source, label: str, min_side: int | None) -> tuple[Image.Image, tuple[int, int]]:
    """An encoded photo (path or binary file) decoded upright, JPEGs at reduced size where allowed."""
    try:
        img = Image.open(source)
        orientation = img.getexif().get(0x0112, 1)
        full = img.size
        if orientation in (5, 6, 7, 8):
            full = (full[1], full[0])
        factor = reduction_factor(img.size, min_side) if min_side else 1
        if img.format == "JPEG" and factor >= DRAFT_MIN_FACTOR:
            img.draft("RGB", (img.size[0] // factor, img.size[1] // factor))
        img.load()
    except Exception as e:  # PIL raises many types for corrupt data
        raise ImageReadError(f"{label}: cannot read image ({_image_problem(e)})") from None
    return _reduce(to_rgb(upright(img, orientation)), min_side), full


# A JPEG is decoded at 1/4 or 1/8 size (DCT scaling) when that keeps min_side: large photos
# decode many times faster. A 1/2 reduction is done after a full decode with a box filter
# instead: it costs a few milliseconds on photos that small, and gives exactly the input the
# same photo gets in memory (DCT scaling differs slightly from a box filter, and the network
# notices); larger photos in memory get the box filter that is closest to DCT scaling.
DRAFT_MIN_FACTOR = 4


def drafts_jpeg(path, min_side: int) -> bool:
    """Whether :func:`load_image` decodes this file (a path or an open binary file) at reduced size
    for ``min_side`` (header read only).

    When it does not, the full decode is what the network's input is made from, so a caller that
    also needs the full-size photo can decode once."""
    start = path.tell() if hasattr(path, "read") else None
    try:
        with Image.open(path) as im:
            return im.format == "JPEG" and reduction_factor(im.size, min_side) >= DRAFT_MIN_FACTOR
    except Exception:  # unreadable: let load_image say why
        return False
    finally:
        if start is not None:
            path.seek(start)


def _reduce(img: Image.Image, min_side: int | None) -> Image.Image:
    factor = reduction_factor(img.size, min_side) if min_side else 1
    return img.reduce(factor) if factor > 1 else img


def reduction_factor(size: tuple[int, int], min_side: int) -> int:
    """The JPEG decoder's reduction (1, 2, 4 or 8) that keeps the shorter side >= ``min_side``."""
    scale = min(size) / float(min_side)
    factor = 1
    while factor < 8 and factor * 2 <= scale:
        factor *= 2
    return factor


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an upright photo from its header alone (EXIF rotation applied).

    Missing, empty, corrupt or absurdly large files raise :class:`ImageReadError`.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: " + ("is a folder, not a photo" if path.is_dir() else "no such file"))
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                w, h = h, w
    except Exception as e:  # PIL raises many types for corrupt data (and DecompressionBombError)
        raise ImageReadError(f"{path}: cannot read image ({_image_problem(e)})") from None
    if w <= 0 or h <= 0:
        raise ImageReadError(f"{path}: cannot read image (size {w}x{h})")
    return w, h


def _image_problem(e: Exception) -> str:
    if isinstance(e, Image.DecompressionBombError):
        return f"more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels, refused as a decompression bomb"
    if isinstance(e, Image.UnidentifiedImageError):
        return "not an image, or an unsupported format"
    return f"{type(e).__name__}: {e}"


def upright(img: Image.Image, orientation: int | None = None) -> Image.Image:
    """Apply the EXIF orientation; an upright photo is returned as it is.

    ``ImageOps.exif_transpose`` copies even an upright image, which costs
    ~30 ms on a 12 MP photo.
    """
    if orientation is None:
        orientation = img.getexif().get(0x0112, 1) if hasattr(img, "getexif") else 1
    return ImageOps.exif_transpose(img) if orientation in (2, 3, 4, 5, 6, 7, 8) else img


def _array_to_image(arr: np.ndarray) -> Image.Image:
    if arr.ndim == 2:
        pass
    elif arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        if arr.shape[2] == 1:
            arr = arr[..., 0]
    else:
        raise ImageReadError(f"an image array must be HxW or HxWx{{1,3,4}}; got shape {arr.shape}")
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.uint16:
        out = (arr.astype(np.float64) / 65535.0 * 255.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        out = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif arr.dtype == bool:
        out = arr.astype(np.uint8) * 255
    else:
        out = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(out))


def save_image(img: Image.Image, path: str | os.PathLike, quality: int = 92) -> None:
    """Atomically save a PIL image; JPEG quality ``quality``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() in (".jpg", ".jpeg"):
            # convert() copies even an RGB image: a 12 MP crop would pay ~20 ms for nothing
            (img if img.mode in ("RGB", "L") else img.convert("RGB")).save(tmp, format="JPEG", quality=quality)
        else:
            img.save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files of a folder (not recursive), sorted by name; hidden/temporary files skipped."""
    return scan_images(folder).images


@dataclass
class ImageScan:
    """What a folder holds: its photos, and what was passed over (so a command can say so)."""

    images: list[Path] = field(default_factory=list)
    other_files: list[Path] = field(default_factory=list)  # not an image extension
    folders: list[Path] = field(default_factory=list)  # sub-folders not entered


def scan_images(folder: str | os.PathLike, recursive: bool = False) -> ImageScan:
    """Image files of ``folder`` sorted by path (sub-folders too with ``recursive``).

    Hidden entries (temporary files of atomic writes among them) are neither
    listed nor counted.
    """
    scan = ImageScan()
    pending = [Path(folder)]
    while pending:
        for p in sorted(pending.pop().iterdir()):
            if p.name.startswith("."):
                continue
            if p.is_dir():
                (pending if recursive else scan.folders).append(p)
            elif p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
                scan.images.append(p)
            else:
                scan.other_files.append(p)
    scan.images.sort()
    return scan


# ----------------------------------------------------------------------------
# npz and masks
# ----------------------------------------------------------------------------
def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray], compressed: bool = True) -> None:
    buf = _io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``; a truncated or corrupt archive is a :class:`DataError` naming it."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise DataError("not an .npz archive (a single .npy array)", path)
            return {k: z[k] for k in z.files}
    except (DataError, FileNotFoundError):
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise DataError(f"not a readable .npz archive (truncated or corrupt: {type(e).__name__}: {e})", path) from None


def polygon_to_mask(
    polygon: np.ndarray, width: int, height: int, scale: float = 1.0, offset: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Rasterise an N x 2 pixel polygon (optionally scaled then offset) to a bool mask."""
    mask = Image.new("L", (int(width), int(height)), 0)
    pts = np.asarray(polygon, dtype=np.float64).reshape(-1, 2) * scale + np.asarray(offset)
    if len(pts) >= 3:
        ImageDraw.Draw(mask).polygon([tuple(p) for p in pts], fill=1, outline=1)
    elif len(pts) > 0:
        ImageDraw.Draw(mask).point([tuple(p) for p in pts], fill=1)
    return np.asarray(mask, dtype=bool)


def mask_to_polygon(mask: np.ndarray) -> np.ndarray:
    """Outer contour of the largest connected region of a bool mask, N x 2 float32 pixels."""
    import cv2  # optional dependency (engine extra)

    m = np.ascontiguousarray(mask.astype(np.uint8))
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.zeros((0, 2), np.float32)
    largest = max(contours, key=cv2.contourArea)
    return largest.reshape(-1, 2).astype(np.float32)
