"""`gencrop crop`: crop photos (files or folders) around their subject."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import CommandError, writable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("crop", help="crop photos around their subject",
                       description="Crop photos around their subject with a GenCrop model. "
                                   "Without --model the model bundled with gencrop is used; without "
                                   "--subject/--subjects the subject is found automatically.")
    p.add_argument("photos", nargs="+", metavar="PHOTO_OR_DIR", help="photo files and/or folders of photos")
    p.add_argument("--model", help="model directory (config.json + model.safetensors), original-code "
                                   "run directory, or hub id; default: the bundled model")
    p.add_argument("--epoch", type=int, help="epoch to load from a training run / original-code directory")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--subject", metavar="X,Y,W,H", help="subject box in photo pixels (one photo or all)")
    g.add_argument("--subjects", metavar="FILE.json",
                   help='JSON object mapping photo file names to subject boxes: {"a.jpg": [x, y, w, h]}')
    p.add_argument("--aspect", metavar="W:H", help="requested aspect ratio (GenCrop-C models), e.g. 4:5")
    p.add_argument("--area", type=float, help="requested crop area as a fraction of the photo (GenCrop-C models)")
    p.add_argument("-o", "--out-dir", default="crops", help="where cropped photos go (default: ./crops)")
    p.add_argument("--json", action="store_true", help="print one JSON object per photo per line")
    p.add_argument("--visualize", action="store_true",
                   help="also write <name>_vis.jpg: heatmap, subject and crop drawn on the photo")
    p.add_argument("--no-write", action="store_true", help="only predict; do not write cropped photos")
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: best available)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_aspect(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        if ":" in text:
            w, h = (float(v) for v in text.split(":"))
        else:
            w, h = float(text), 1.0
    except ValueError:
        raise CommandError(f"--aspect must look like 4:5 or 0.8; got {text!r}") from None
    if not (w > 0 and h > 0):
        raise CommandError(f"--aspect must be positive; got {text!r}")
    return w / h


def expand_photos(inputs: list[str]) -> list[Path]:
    """Files as given, folders expanded to their photos (sorted); missing paths kept to report them."""
    from ..io import list_images

    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
            if not found:
                print(f"gencrop crop: warning: no photos in folder {path}", file=sys.stderr)
            out.extend(found)
        else:
            out.append(path)
    return out


def load_subjects(args) -> tuple[dict | None, object]:
    """(per-file-name map or None, one box for all or None)."""
    from ..geometry import Box

    if args.subject:
        try:
            return None, Box.parse(args.subject)
        except ValueError as e:
            raise CommandError(f"--subject: {e}") from None
    if args.subjects:
        from ..io import read_json

        try:
            data = read_json(args.subjects)
        except FileNotFoundError:
            raise CommandError(f"--subjects: no such file: {args.subjects}") from None
        except ValueError as e:  # names the file and what is wrong
            raise CommandError(f"--subjects: {e}") from None
        if not isinstance(data, dict):
            raise CommandError('--subjects must hold a JSON object {"photo.jpg": [x, y, w, h], ...}')
        boxes = {}
        for name, value in data.items():
            try:
                if not (isinstance(value, list) and len(value) == 4):
                    raise ValueError("expected [x, y, w, h]")
                boxes[name] = Box.parse(",".join(str(v) for v in value))
            except ValueError as e:
                raise CommandError(f"--subjects: entry {name!r}: {e}") from None
        return boxes, None
    return None, None


def run(args) -> int:
    from tqdm import tqdm

    from ..inference import Cropper
    from ..io import ImageReadError, save_image

    aspect = parse_aspect(args.aspect)
    subject_map, subject_all = load_subjects(args)
    photos = expand_photos(args.photos)
    if not photos:
        raise CommandError("no photos to crop")
    if not args.no_write:
        writable(args.out_dir)
    try:
        cropper = Cropper.from_pretrained(args.model, epoch=args.epoch, device=args.device)
    except FileNotFoundError as e:
        raise CommandError(f"{e}" + ("" if args.model else " (use --model DIR)")) from None
    except (ValueError, KeyError, RuntimeError) as e:
        raise CommandError(f"cannot load model {args.model or '(bundled)'}: {e}") from None

    out_dir = Path(args.out_dir)
    failed = 0
    bar = tqdm(photos, desc="crop", unit="photo", disable=args.quiet or len(photos) < 2, file=sys.stderr)
    for path in bar:
        try:
            if subject_map is not None:
                subject = subject_map.get(path.name, subject_map.get(str(path)))
            else:
                subject = subject_all
            if args.no_write:
                result, img = cropper.crop(path, subject=subject, aspect=aspect, area=args.area), None
            else:
                result, img = cropper.crop_full(path, subject=subject, aspect=aspect, area=args.area)
            record = result.to_json(str(path))
            if img is not None:
                suffix = path.suffix.lower() if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") else ".jpg"
                target = out_dir / f"{path.stem}_crop{suffix}"
                save_image(result.cut(img), target)
                record["output"] = str(target)
                if args.visualize:
                    from ..visualize import crop_visualization

                    vis = out_dir / f"{path.stem}_vis.jpg"
                    save_image(crop_visualization(img, result, cropper.dim), vis)
                    record["visualization"] = str(vis)
            if args.json:
                print(json.dumps(record), flush=True)
            elif not args.quiet:
                x, y, w, h = (round(v) for v in result.box.xywh)
                where = f" -> {record['output']}" if "output" in record else ""
                tqdm.write(f"{path}: crop {x},{y},{w},{h}{where}", file=sys.stdout)
        except (ImageReadError, ValueError, OSError) as e:
            failed += 1
            msg = str(e) if str(path) in str(e) else f"{path}: {e}"
            if args.json:
                print(json.dumps({"photo": str(path), "error": str(e)}), flush=True)
            print(f"gencrop crop: error: {msg}", file=sys.stderr)
    if failed:
        print(f"gencrop crop: {failed} of {len(photos)} photos failed", file=sys.stderr)
    return 1 if failed else 0
