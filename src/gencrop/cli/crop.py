"""`gencrop crop`: crop photos (files or folders) around their subject."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from . import CommandError, add_subject_finder_option, counted, writable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "crop",
        help="crop photos around their subject",
        description="Crop photos around their subject with a GenCrop model. "
        "Without --model the model bundled with gencrop is used; without "
        "--subject/--subjects the subject is found automatically.",
    )
    p.add_argument("photos", nargs="+", metavar="PHOTO_OR_DIR", help="photo files and/or folders of photos")
    add_crop_options(p)
    p.set_defaults(func=run)


def add_crop_options(p: argparse.ArgumentParser) -> None:
    """The model, subject, shape and output options of ``gencrop crop``; `gencrop batch` takes the same."""
    p.add_argument(
        "--model",
        help="model directory (config.json + model.safetensors [+ model.onnx]), "
        "exported .onnx file, original-code run directory, or hub id; "
        "default: the bundled model",
    )
    p.add_argument("--epoch", type=int, help="epoch to load from a training run / original-code directory")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--subject", metavar="X,Y,W,H", help="subject box in photo pixels (one photo or all)")
    g.add_argument(
        "--subjects",
        metavar="FILE.json",
        help='JSON object mapping photo file names to subject boxes: {"a.jpg": [x, y, w, h]}',
    )
    p.add_argument(
        "--find-missing-subjects",
        action="store_true",
        help="photos without an entry in --subjects get an automatically found subject "
        "(without it they are reported as failed)",
    )
    p.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="also crop the photos in sub-folders (their crops go to the same sub-folders of -o)",
    )
    p.add_argument(
        "--aspect",
        metavar="W:H",
        action="append",
        default=[],
        help="crop to exactly this aspect ratio (4:5, 16:9, 0.8); repeat for several crops of one "
        "photo, written as NAME_4x5.jpg, NAME_16x9.jpg",
    )
    p.add_argument(
        "--size",
        metavar="WxH",
        action="append",
        default=[],
        help="crop at W:H, then resize to exactly W x H pixels (a thumbnail, e.g. 1200x630); repeatable",
    )
    p.add_argument("--area", type=float, help="crop area as a fraction of the photo, e.g. 0.5")
    p.add_argument(
        "--allow-subject-cut",
        action="store_true",
        help="return the network's crop as it is, even where it cuts the subject (by default a "
        "subject is kept whole inside the crop)",
    )
    p.add_argument("-o", "--out-dir", default="crops", help="where cropped photos go (default: ./crops)")
    p.add_argument("--json", action="store_true", help="print one JSON object per photo per line")
    p.add_argument(
        "--visualize",
        action="store_true",
        help="also write <name>_vis.jpg: heatmap, subject and crop drawn on the photo",
    )
    p.add_argument("--no-write", action="store_true", help="only predict; do not write cropped photos")
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: the CPU for onnx, else the best available)")
    p.add_argument(
        "--runtime",
        choices=("auto", "onnx", "torch"),
        default="auto",
        help="what runs the network: onnx (onnxruntime, no torch needed), torch, or auto "
        "(onnx when the model has an up-to-date model.onnx and no GPU is asked for; default)",
    )
    add_subject_finder_option(p)
    p.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="photos per network pass (decoded on threads, cropped together; default 8)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def parse_shapes(aspects: list[str], sizes: list[str], area: float | None) -> list:
    """The requested shapes, in the order given (``--aspect`` first); one free shape when none is asked."""
    from ..shapes import Shape

    if area is not None and not 0 < area <= 1:
        raise CommandError(f"--area must be a fraction of the photo in (0, 1]; got {area}")
    shapes = []
    for text in aspects:
        # an aspect is a ratio only: "16x9" would read as a 16 x 9 pixel output size
        try:
            if "x" in text.lower():
                raise ValueError(text)
            shapes.append(Shape.parse(text, area))
        except ValueError:
            raise CommandError(
                f"--aspect must be a positive W:H (4:5) or width/height (0.8); got {text!r} "
                "(an exact size in pixels is --size WxH)"
            ) from None
    for text in sizes:
        try:
            if "x" not in text.lower():
                raise ValueError(text)
            shapes.append(Shape.parse(text, area))
        except ValueError:
            raise CommandError(f"--size must be positive WxH pixels (1200x630); got {text!r}") from None
    if len({s.name for s in shapes}) != len(shapes):
        raise CommandError("the same shape is asked for twice")
    return shapes or [Shape(area=area)]


def crop_file_name(photo_name: str, shape_name: str | None) -> str:
    """The name a crop is written under: ``NAME_crop.jpg`` for the one free crop, ``NAME_<shape>.jpg``
    when shapes are asked for; in the photo's own format when it is JPEG, PNG or WebP, else JPEG."""
    photo = PurePosixPath(photo_name)
    suffix = photo.suffix.lower() if photo.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") else ".jpg"
    return f"{photo.stem}_{shape_name or 'crop'}{suffix}"


def visualization_file_name(photo_name: str) -> str:
    """The name of the picture of heatmap, subject and crop (``--visualize``)."""
    return f"{PurePosixPath(photo_name).stem}_vis.jpg"


def crop_line(record: dict, named: bool) -> str:
    """A crop as printed without --json: ``photo.jpg: 1x1 crop x,y,w,h -> out/photo_1x1.jpg``."""
    x, y, w, h = record["crop"]
    where = f" -> {record['output']}" if record.get("output") else ""
    shape = f" {record.get('shape') or 'free'}" if named else ""
    return f"{record['photo']}:{shape} crop {x},{y},{w},{h}{where}"


def error_line(photo: str, error: str) -> str:
    """A failed photo's message, naming the photo once."""
    return error if photo in error else f"{photo}: {error}"


class PhotoInput(NamedTuple):
    path: Path
    relative: Path  # its path inside the folder given (its name for a file given): where its crop goes


@dataclass
class PhotoInputs:
    photos: list[PhotoInput] = field(default_factory=list)
    folders_skipped: list[Path] = field(default_factory=list)  # sub-folders not entered (no --recursive)
    files_skipped: list[Path] = field(default_factory=list)  # files in the folders that are not photos


def expand_photos(inputs: list[str], recursive: bool = False) -> PhotoInputs:
    """Files as given, folders expanded to their photos (sorted); a missing path is a usage error."""
    from ..io import scan_images

    missing = [item for item in inputs if not Path(item).exists()]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise CommandError(f"no such file or folder: {shown}")
    out = PhotoInputs()
    for item in inputs:
        path = Path(item)
        if not path.is_dir():
            out.photos.append(PhotoInput(path, Path(path.name)))
            continue
        scan = scan_images(path, recursive=recursive)
        if not scan.images:
            print(f"gencrop crop: warning: no photos in folder {path}", file=sys.stderr)
        out.photos += [PhotoInput(p, p.relative_to(path)) for p in scan.images]
        out.folders_skipped += scan.folders
        out.files_skipped += scan.other_files
    return out


def skipped_text(inputs: PhotoInputs) -> str:
    """What the folders held besides the photos cropped, for the summary ("" when nothing)."""
    parts = []
    if inputs.folders_skipped:
        parts.append(f"{counted(len(inputs.folders_skipped), 'sub-folder')} (--recursive enters them)")
    if inputs.files_skipped:
        names = ", ".join(p.name for p in inputs.files_skipped[:3])
        more = ", ..." if len(inputs.files_skipped) > 3 else ""
        parts.append(f"{counted(len(inputs.files_skipped), 'file')} not a photo ({names}{more})")
    return "skipped " + " and ".join(parts) if parts else ""


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


def match_subjects(photos: list[PhotoInput], boxes: dict, args) -> dict[Path, object]:
    """The --subjects entry of each photo that has one; say which entries and photos did not meet.

    A photo is looked up by its path inside the folder given, its file name,
    then its path as given. Entries naming no photo are a warning; photos
    without an entry are cropped with a found subject only under
    --find-missing-subjects, and when no photo has an entry it is a usage error.
    """
    command = f"gencrop {getattr(args, 'command', None) or 'crop'}"  # `gencrop batch` says the same
    found: dict[Path, object] = {}
    used: set[str] = set()
    for photo in photos:
        for key in (photo.relative.as_posix(), photo.path.name, str(photo.path)):
            if key in boxes:
                found[photo.path] = boxes[key]
                used.add(key)
                break
    unused = [k for k in boxes if k not in used]
    if unused:
        shown = ", ".join(unused[:3]) + (", ..." if len(unused) > 3 else "")
        print(
            f"{command}: warning: {counted(len(unused), 'entry', 'entries')} of {args.subjects} "
            f"name no photo given ({shown})",
            file=sys.stderr,
        )
    without = [p.path for p in photos if p.path not in found]
    if without and not args.find_missing_subjects:
        if not found:
            raise CommandError(
                f"no photo given has an entry in {args.subjects} (keys are file names, e.g. "
                f"{photos[0].path.name!r}); --find-missing-subjects finds subjects automatically"
            )
        print(
            f"{command}: warning: {counted(len(without), 'photo')} without an entry in {args.subjects} "
            f"(e.g. {without[0]}) will fail; --find-missing-subjects finds their subjects automatically",
            file=sys.stderr,
        )
    elif without:
        print(
            f"{command}: note: {counted(len(without), 'photo')} without an entry in {args.subjects}: "
            f"their subjects are found automatically",
            file=sys.stderr,
        )
    return found


def check_model(args) -> None:
    """Find the model before any work: no weights read, no torch imported (a light install has none)."""
    from ..runtime.files import CONFIG_NAME, resolve_model_dir

    if args.model and str(args.model).endswith(".onnx"):
        if not Path(args.model).is_file():
            raise CommandError(f"no such ONNX file: {args.model}")
        return
    try:
        directory = resolve_model_dir(args.model)
    except (FileNotFoundError, NotADirectoryError) as e:
        raise CommandError(f"{e}" + ("" if args.model else " (use --model DIR)")) from None
    if not (directory / CONFIG_NAME).is_file():
        raise CommandError(f"{directory}: no {CONFIG_NAME} (not a gencrop model directory)")


def load_cropper(args, **kwargs):
    """The ``Cropper`` the options ask for; a model that cannot be loaded is a one-line usage error."""
    from ..inference import Cropper
    from ..runtime import MissingExtra

    try:
        return Cropper.from_pretrained(args.model, epoch=args.epoch, device=args.device, runtime=args.runtime, **kwargs)
    except MissingExtra as e:
        raise CommandError(str(e)) from None
    except FileNotFoundError as e:
        raise CommandError(f"{e}" + ("" if args.model else " (use --model DIR)")) from None
    except (ValueError, KeyError, RuntimeError) as e:
        raise CommandError(f"cannot load model {args.model or '(bundled)'}: {e}") from None


# Threads that decode photos and find their subjects while others are cropped (`gencrop crop` of a
# folder; Pillow and onnxruntime release the GIL).
PREPARE_THREADS = 2


def run(args) -> int:
    # Everything the user gave is checked before the (seconds-long) imports and model load.
    if args.batch_size < 1:
        raise CommandError(f"--batch-size must be at least 1; got {args.batch_size}")
    shapes = parse_shapes(args.aspect, args.size, args.area)
    named = len(shapes) > 1 or not shapes[0].is_free
    keep = False if args.allow_subject_cut else None
    subject_map, subject_all = load_subjects(args)
    if args.find_missing_subjects and subject_map is None:
        raise CommandError("--find-missing-subjects applies to --subjects FILE.json")
    inputs = expand_photos(args.photos, recursive=args.recursive)
    if not inputs.photos:
        skipped = skipped_text(inputs)
        raise CommandError("no photos to crop" + (f" ({skipped})" if skipped else ""))
    subjects = match_subjects(inputs.photos, subject_map, args) if subject_map is not None else {}
    check_model(args)
    if not args.no_write:
        writable(args.out_dir)

    from ..crop_batch import PHOTO_ERRORS, crop_each
    from ..io import save_image

    cropper = load_cropper(args, subject_finder=args.subject_finder)
    out_dir = Path(args.out_dir)
    failed = upscaled = 0
    photos = inputs.photos
    bar = None
    say = functools.partial(print, flush=True)
    if not args.quiet and len(photos) > 1:  # tqdm costs a one-photo run 40 ms of imports: only for a bar
        from tqdm import tqdm

        bar = tqdm(total=len(photos), desc="crop", unit="photo", file=sys.stderr)
        say = tqdm.write  # lines printed above the bar, not through it

    def prepare(photo: tuple[Path, Path]):
        path = photo[0]
        if subject_map is None:
            subject = subject_all
        elif path in subjects or args.find_missing_subjects:
            subject = subjects.get(path)
        else:
            raise ValueError(f"no entry in {args.subjects} (--find-missing-subjects finds its subject)")
        return cropper.prepare(path, subject, cut=not args.no_write)

    def save(path: Path, relative: Path, results: list) -> list[dict]:
        """Write a photo's crops (and its picture): its records, with where each went."""
        nonlocal upscaled
        records = [result.to_json(str(path)) for result in results]
        if args.no_write:
            return records
        for result, record in zip(results, records):
            enlarged = upscale_note(result)
            if enlarged:
                upscaled += 1
                say(f"gencrop crop: warning: {path}: {enlarged}", file=sys.stderr)
            target = out_dir / relative.parent / crop_file_name(path.name, result.shape.name if named else None)
            save_image(result.image, target)
            record["output"] = str(target)
        if args.visualize:
            from ..visualize import crop_visualization

            vis = out_dir / relative.parent / visualization_file_name(path.name)
            save_image(crop_visualization(results[0].photo, results[0], cropper.dim), vis)
            for record in records:
                record["visualization"] = str(vis)
        return records

    # Several photos: --batch-size of them decoded and their subjects found on threads, then one
    # network pass; their crops are written and their lines printed in the order of the photos.
    pool = None
    if len(photos) > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(PREPARE_THREADS, thread_name_prefix="gencrop-prepare")
    try:
        for start in range(0, len(photos), args.batch_size):
            chunk = photos[start : start + args.batch_size]
            map_items = pool.map if pool else map
            outcomes = crop_each(cropper, prepare, chunk, shapes, keep_subject=keep, map_items=map_items)
            for (path, relative), outcome in zip(chunk, outcomes):
                try:
                    if isinstance(outcome, Exception):
                        raise outcome
                    for record in save(path, relative, outcome):
                        if args.json:
                            print(json.dumps(record), flush=True)
                        elif not args.quiet:
                            say(crop_line(record, named), file=sys.stdout)
                except PHOTO_ERRORS as e:
                    failed += 1
                    if args.json:
                        print(json.dumps({"photo": str(path), "error": str(e)}), flush=True)
                    print(f"gencrop crop: error: {error_line(str(path), str(e))}", file=sys.stderr)
                if bar is not None:
                    bar.update()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if bar is not None:
            bar.close()
    print_summary(len(photos), failed, inputs, args.quiet, upscaled)
    return 1 if failed else 0


def upscale_note(result) -> str:
    """What a ``--size`` output does to a crop smaller than it ("" when it is not enlarged)."""
    size = result.shape.size if result.shape is not None else None
    box = result.box
    if size is None or box.w <= 0 or box.h <= 0:
        return ""
    factor = max(size[0] / box.w, size[1] / box.h)
    if factor <= 1:
        return ""
    return f"--size {size[0]}x{size[1]} enlarges the {int(box.w)}x{int(box.h)} crop {factor:.1f}x (it will look soft)"


def print_summary(total: int, failed: int, inputs: PhotoInputs, quiet: bool, upscaled: int = 0) -> None:
    """One line on stderr: photos cropped, failed, crops enlarged, and what the folders held besides photos."""
    if quiet and not failed:
        return
    line = f"gencrop crop: {total - failed} of {counted(total, 'photo')} cropped"
    if failed:
        line += f", {failed} failed"
    if upscaled:
        line += f", {counted(upscaled, 'crop')} enlarged to its --size"
    skipped = skipped_text(inputs)
    print(line + (f"; {skipped}" if skipped else ""), file=sys.stderr)
