"""Looking at what the engine produced: file structure (``inspect``) and contact sheets (``view``).

A person must be able to check a 100k-image run quickly: ``inspect`` tells
what a ``.json``/``.json.gz``/``.npz`` file holds without loading it into a
notebook, and ``view`` draws outpainted canvases with the original photo's
frame, the subject's box and mask, and the quality verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..geometry import Box
from ..io import ImageReadError, list_images, load_image, load_npz, polygon_to_mask, read_json, save_image
from .runner import parse_outpaint_name
from .sheets import contact_sheet


# ----------------------------------------------------------------------------
# inspect
# ----------------------------------------------------------------------------
def describe(value: Any, depth: int = 0, max_depth: int = 4, max_items: int = 3) -> list[str]:
    """Indented lines describing a JSON value's structure, with a few examples."""
    pad = "  " * depth
    if isinstance(value, dict):
        lines = [f"{pad}dict with {len(value)} keys"]
        shown = len(value) if len(value) <= 8 else max_items  # records are shown whole
        if depth < max_depth:
            for k in list(value)[:shown]:
                sub = describe(value[k], depth + 1, max_depth, max_items)
                lines.append(f"{pad}  {k!r}: {sub[0].strip()}")
                lines.extend(sub[1:])
            if len(value) > shown:
                lines.append(f"{pad}  ... {len(value) - shown} more keys")
        return lines
    if isinstance(value, list):
        if 0 < len(value) <= 8 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return [f"{pad}list {value}"]
        kinds = sorted({type(v).__name__ for v in value})
        lines = [f"{pad}list of {len(value)} ({', '.join(kinds) or 'empty'})"]
        if value and depth < max_depth:
            sub = describe(value[0], depth + 1, max_depth, max_items)
            lines.append(f"{pad}  [0]: {sub[0].strip()}")
            lines.extend(sub[1:])
        return lines
    text = repr(value)
    return [f"{pad}{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"]


def inspect_file(path: str | Path, max_items: int = 3) -> str:
    """A printable description of a ``.json``, ``.json.gz`` or ``.npz`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    size = path.stat().st_size
    if path.suffix == ".npz":
        arrays = load_npz(path)
        lines = [f"{path}: npz, {len(arrays)} arrays, {size:,} bytes"]
        shapes = [a.shape for a in arrays.values()]
        if arrays:
            dtypes = sorted({str(a.dtype) for a in arrays.values()})
            ndims = sorted({a.ndim for a in arrays.values()})
            lines.append(f"  dtypes {dtypes}, ndim {ndims}, total {sum(a.size for a in arrays.values()):,} values")
            if all(a.ndim == 2 for a in arrays.values()):
                rows = [s[0] for s in shapes]
                lines.append(f"  rows per array: min {min(rows)}, median {int(np.median(rows))}, max {max(rows)}")
        for k in list(arrays)[:max_items]:
            a = arrays[k]
            lines.append(f"  {k!r}: {a.dtype} {tuple(a.shape)}")
        if len(arrays) > max_items:
            lines.append(f"  ... {len(arrays) - max_items} more arrays")
        return "\n".join(lines)
    if path.name.endswith(".json") or path.name.endswith(".json.gz"):
        try:
            value = read_json(path)
        except ValueError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        kind = "json.gz" if path.name.endswith(".gz") else "json"
        return "\n".join([f"{path}: {kind}, {size:,} bytes"] + describe(value, 1, max_items=max_items))
    raise ValueError(f"{path}: can inspect .json, .json.gz and .npz files")


# ----------------------------------------------------------------------------
# contact sheets
# ----------------------------------------------------------------------------
def draw_overlay(
    img: Image.Image,
    frame: Box | None = None,
    detections: Iterable[tuple[Box, np.ndarray]] = (),
    subject: Box | None = None,
) -> Image.Image:
    """The image with masks tinted, detection boxes (subject thicker) and the original frame drawn."""
    out = np.asarray(img.convert("RGB"), np.float32).copy()
    W, H = img.size
    dets = list(detections)
    for _, poly in dets:
        if poly is not None and len(poly) >= 3:
            m = polygon_to_mask(poly, W, H)
            out[m] = 0.55 * out[m] + 0.45 * np.array([255, 64, 160], np.float32)
    canvas = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    width = max(2, W // 200)
    for box, _ in dets:
        draw.rectangle(list(box.xyxy), outline=(255, 64, 160), width=width)
    if subject is not None:
        draw.rectangle(list(subject.xyxy), outline=(255, 230, 0), width=2 * width)
    if frame is not None:
        draw.rectangle(list(frame.xyxy), outline=(0, 255, 0), width=width)
    return canvas


def view_dataset(
    dataset: str | Path,
    out: str | Path,
    *,
    detect_dir: str | Path | None = None,
    quality: str | Path | None = None,
    limit: int = 48,
    columns: int = 6,
    thumb: int = 256,
    ids: Sequence[str] | None = None,
) -> int:
    """Draw the outpainted images of ``dataset`` into one PNG; returns the number drawn.

    Green: where the original photo sits (from the file name). Pink: kept
    detections and their masks; yellow: the subject (the best-scoring one).
    The quality verdict (from ``bad.json`` or its ``.scores.json``) is written under each.
    ``detect_dir`` defaults to ``dataset`` (segment writes beside the images).
    """
    from .quality import read_verdicts
    from .segment import read_segmentation

    dataset = Path(dataset)
    files = [p for p in list_images(dataset) if parse_outpaint_name(p.name)]
    if ids is not None:
        wanted = set(ids)
        files = [p for p in files if parse_outpaint_name(p.name)[0] in wanted]
    if not files:
        raise ImageReadError(f"{dataset}: no outpainted images (img<ID>_X_Y_W_H.jpg)")
    files = files[:limit]
    detect, masks = read_segmentation(detect_dir if detect_dir is not None else dataset)
    verdicts = read_verdicts(quality) if quality else {}
    tiles = []
    for path in files:
        try:
            img, _ = load_image(path)
        except ImageReadError as e:
            tiles.append((Image.new("RGB", (thumb, thumb)), [path.name, str(e)[:40]], (255, 0, 0)))
            continue
        _, frame = parse_outpaint_name(path.name)
        recs = detect.get(path.stem, [])
        dets = [(Box.from_xywh(r["xywh"]), masks.get(str(r.get("mask_id")))) for r in recs]
        subject = max(recs, key=lambda r: r.get("score") or 0.0, default=None)
        overlay = draw_overlay(img, frame, dets, Box.from_xywh(subject["xywh"]) if subject else None)
        lines = [path.name]
        colour = (230, 230, 230)
        if path.name in verdicts:
            bad, score = verdicts[path.name]
            lines.append(("BAD" if bad else "ok") + (f" {score:.2f}" if score is not None else ""))
            colour = (255, 80, 80) if bad else (120, 255, 120)
        if detect:
            lines.append(f"{len(recs)} subject(s)" if recs else "no subject found")
        tiles.append((overlay, lines, colour))
    save_image(contact_sheet(tiles, thumb=thumb, columns=columns), out)
    return len(tiles)
