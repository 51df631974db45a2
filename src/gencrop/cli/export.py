"""`gencrop export`: a model as one ONNX file, for cropping with onnxruntime (no torch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import CommandError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a model to ONNX (cropping without torch)",
        description="Export a GenCrop model (the whole network, dynamic batch) to one ONNX "
        "file that `gencrop crop --runtime onnx` and Cropper run with onnxruntime. "
        "`gencrop export default` rebuilds the bundled model's model.onnx.",
    )
    p.add_argument("model", metavar="MODEL", help="model directory or hub id; `default` = the bundled model")
    p.add_argument("-o", "--output", help="ONNX file to write (default: MODEL/model.onnx)")
    p.add_argument("--epoch", type=int, help="epoch of a training run directory to export")
    p.add_argument("--float32", action="store_true", help="store float32 weights (default float16, half the size)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..runtime import MissingExtra

    model = None if args.model == "default" and not Path("default").exists() else args.model
    if args.output and not args.output.endswith(".onnx"):
        raise CommandError(f"--output must end in .onnx; got {args.output}")
    try:
        from ..export import export_onnx

        report = export_onnx(model, args.output, epoch=args.epoch, half=not args.float32, progress=not args.quiet)
    except MissingExtra as e:
        raise CommandError(str(e)) from None
    except (FileNotFoundError, NotADirectoryError, ValueError, KeyError) as e:
        raise CommandError(f"cannot export {args.model}: {e}") from None
    print(f"gencrop export: wrote {report.text()}", file=sys.stderr)
    return 0
