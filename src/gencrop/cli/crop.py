"""`gencrop crop`: crop photos (files or folders) around their subject."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import CommandError


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
    p.add_argument("--aspect", metavar="W:H", action="append", default=[],
                   help="crop to exactly this aspect ratio (4:5, 16:9, 0.8); repeat for several crops of one "
                        "photo, written as NAME_4x5.jpg, NAME_16x9.jpg")
    p.add_argument("--size", metavar="WxH", action="append", default=[],
                   help="crop at W:H, then resize to exactly W x H pixels (a thumbnail, e.g. 1200x630); repeatable")
    p.add_argument("--area", type=float, help="crop area as a fraction of the photo, e.g. 0.5")
    p.add_argument("--allow-subject-cut", action="store_true",
                   help="return the network's crop as it is, even where it cuts the subject (by default a "
                        "subject is kept whole inside the crop)")
    p.add_argument("-o", "--out-dir", default="crops", help="where cropped photos go (default: ./crops)")
    p.add_argument("--json", action="store_true", help="print one JSON object per photo per line")
    p.add_argument("--visualize", action="store_true",
                   help="also write <name>_vis.jpg: heatmap, subject and crop drawn on the photo")
    p.add_argument("--no-write", action="store_true", help="only predict; do not write cropped photos")
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: best available)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_shapes(aspects: list[str], sizes: list[str], area: float | None) -> list:
    """The requested shapes, in the order given (``--aspect`` first); one free shape when none is asked."""
    from ..shapes import Shape

    if area is not None and not 0 < area <= 1:
        raise CommandError(f"--area must be a fraction of the photo in (0, 1]; got {area}")
    shapes = []
    for flag, texts in (("--aspect", aspects), ("--size", sizes)):
        for text in texts:
            if flag == "--size" and "x" not in text.lower():
                raise CommandError(f"--size must look like 1200x630; got {text!r}")
            if flag == "--aspect" and "x" in text.lower():
                raise CommandError(f"--aspect must look like 4:5 or 0.8 (for an exact size use --size); got {text!r}")
            try:
                shapes.append(Shape.parse(text, area))
            except ValueError as e:
                raise CommandError(f"{flag}: {e}") from None
    if len({s.name for s in shapes}) != len(shapes):
        raise CommandError("the same shape is asked for twice")
    return shapes or [Shape(area=area)]


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
        except ValueError as e:
            raise CommandError(f"--subjects: not valid JSON ({e})") from None
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

    shapes = parse_shapes(args.aspect, args.size, args.area)
    named = len(shapes) > 1 or not shapes[0].is_free
    keep = False if args.allow_subject_cut else None
    subject_map, subject_all = load_subjects(args)
    photos = expand_photos(args.photos)
    if not photos:
        raise CommandError("no photos to crop")
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
                results, img = cropper.crop_shapes(path, shapes, subject, keep_subject=keep), None
            else:
                results, img = cropper.crop_shapes_full(path, shapes, subject, keep_subject=keep)
            suffix = path.suffix.lower() if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") else ".jpg"
            records = [result.to_json(str(path)) for result in results]
            if img is not None:
                for result, record in zip(results, records):
                    target = out_dir / f"{path.stem}_{result.shape.name if named else 'crop'}{suffix}"
                    save_image(result.cut(img), target)
                    record["output"] = str(target)
                if args.visualize:
                    from ..visualize import crop_visualization

                    vis = out_dir / f"{path.stem}_vis.jpg"
                    save_image(crop_visualization(img, results[0], cropper.dim), vis)
                    for record in records:
                        record["visualization"] = str(vis)
            for result, record in zip(results, records):
                if args.json:
                    print(json.dumps(record), flush=True)
                elif not args.quiet:
                    x, y, w, h = record["crop"]
                    where = f" -> {record['output']}" if "output" in record else ""
                    shape = f" {result.shape.name}" if named else ""
                    tqdm.write(f"{path}:{shape} crop {x},{y},{w},{h}{where}", file=sys.stdout)
        except (ImageReadError, ValueError, OSError) as e:
            failed += 1
            msg = str(e) if str(path) in str(e) else f"{path}: {e}"
            if args.json:
                print(json.dumps({"photo": str(path), "error": str(e)}), flush=True)
            print(f"gencrop crop: error: {msg}", file=sys.stderr)
    if failed:
        print(f"gencrop crop: {failed} of {len(photos)} photos failed", file=sys.stderr)
    return 1 if failed else 0
