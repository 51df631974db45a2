"""``gencrop export``: a GenCrop model as one ONNX file, for cropping without torch.

The whole network is exported (backbone, fusion, cell transformer or
GenCrop-C decoder, RoI-align/RoD-align crop scorer, subject weighting and the
weighted average) with a dynamic batch. Inputs: ``image`` (B, C, S, S)
letterboxed and normalised, ``subject`` (B, 4) subject ``xyxy`` in input
pixels, and for GenCrop-C models ``shape`` (B, 4) requests (zeros: none).
Outputs: ``crop`` (B, 4) ``xyxy`` normalised by S and ``weights`` (B, rows,
cols). The metadata holds what the pre-processing must reproduce and the
digest of the weights the file was made from (a stale file is refused).

Weights are stored in float16 (the bundled model's own precision) and cast
to float32 when the file is loaded, so the file is half the size and the
arithmetic is float32 like PyTorch's on a CPU. Needs the torch extra and
the ``onnx`` + ``onnxscript`` packages (``pip install 'gencrop[export]'``).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .data.letterbox import IMAGENET_MEAN, IMAGENET_STD
from .runtime.base import MissingExtra
from .runtime.files import ONNX_NAME, WEIGHTS_NAME, resolve_model_dir, weights_digest

__all__ = ["export_onnx", "ExportReport", "EXPORT_HINT", "OPSET"]

EXPORT_HINT = "pip install 'gencrop[export]'"
OPSET = 18
_MIN_HALF_ELEMENTS = 64  # smaller float tensors stay float32: no saving, and the Cast costs a node


@dataclass
class ExportReport:
    path: Path
    size_bytes: int
    variant: str
    half: bool
    max_crop_difference_px: float  # |onnxruntime - PyTorch| on check inputs, at the input size
    max_weight_difference: float

    def text(self) -> str:
        return (
            f"{self.path} ({self.size_bytes / 1e6:.1f} MB, {self.variant}, "
            f"{'float16' if self.half else 'float32'} weights); onnxruntime vs PyTorch: crops within "
            f"{self.max_crop_difference_px:.4f} px, cell weights within {self.max_weight_difference:.2e}"
        )


def _require():
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        raise MissingExtra(f"exporting to ONNX needs {e.name}: {EXPORT_HINT}") from None


def _graph_module(model):
    """The model as a module whose forward takes and returns plain tensors only."""
    from torch import nn

    class Graph(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, image, subject):
            out = self.model(image, subject)
            return out.crop, out.weights

    class ShapeGraph(Graph):
        def forward(self, image, subject, shape):
            out = self.model(image, subject, target_shape=shape)
            return out.crop, out.weights

    return (ShapeGraph if model.config.variant == "gencrop-c" else Graph)().eval()


def _check_inputs(config, batch: int, seed: int = 0):
    """Letterboxed example photo plus noise images, varied subjects (and shape requests)."""
    from PIL import Image

    from .data.letterbox import box_mask, letterbox_image
    from .geometry import Box
    from .runtime.base import shape_request

    rng = np.random.default_rng(seed)
    dim = config.image_size
    photo = Image.open(Path(__file__).parent / "assets" / "astronaut.jpg").convert("RGB")
    first, lb = letterbox_image(photo, dim)
    images, subjects = [], []
    for i in range(batch):
        arr = first if i == 0 else rng.normal(0, 1, first.shape).astype(np.float32)
        x1, y1 = rng.uniform(0, dim * 0.6, 2)
        w, h = rng.uniform(dim * 0.1, dim * 0.4, 2)
        subject = lb.to_input(Box(40, 20, 300, 400)) if i == 0 else Box(x1, y1, w, h)
        if config.in_channels == 4:
            arr = np.concatenate([arr, box_mask(subject, dim)[None]], axis=0)
        images.append(arr)
        subjects.append(subject.xyxy)
    shapes = np.array(
        [shape_request(*req) for req in [(None, None), (0.5, None), (None, 0.8), (0.4, 1.5)] * batch][:batch],
        np.float32,
    )
    return np.stack(images), np.array(subjects, np.float32), shapes


def _half_initializers(proto) -> None:
    """Store large float32 initializers as float16, each followed by a Cast back to float32."""
    import onnx
    from onnx import helper, numpy_helper

    graph = proto.graph
    kept, casts = [], []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init) if init.data_type == onnx.TensorProto.FLOAT else None
        if arr is None or arr.size < _MIN_HALF_ELEMENTS:
            kept.append(init)
            continue
        half_name = f"{init.name}__float16"
        kept.append(numpy_helper.from_array(arr.astype(np.float16), half_name))
        casts.append(
            helper.make_node("Cast", [half_name], [init.name], to=onnx.TensorProto.FLOAT, name=f"{init.name}__to_float")
        )
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def _strip_trace_info(proto) -> None:
    """Drop the exporter's per-node stack traces and names of Python modules (a third of the file)."""
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for value in list(proto.graph.value_info) + list(proto.graph.input) + list(proto.graph.output):
        del value.metadata_props[:]
        value.doc_string = ""


def export_onnx(
    model: str | Path | None = None,
    out: str | Path | None = None,
    *,
    epoch: int | None = None,
    half: bool = True,
    progress: bool = True,
) -> ExportReport:
    """Export a model directory (``None``: the bundled model) to ``out`` (default ``DIR/model.onnx``)."""
    _require()
    import onnx
    import torch
    from tqdm import tqdm

    from .io import atomic_path
    from .modeling.checkpoints import load_model

    directory = resolve_model_dir(model)
    source = (
        directory / f"epoch{epoch}"
        if epoch is not None and (directory / f"epoch{epoch}" / WEIGHTS_NAME).exists()
        else directory
    )
    out = Path(out) if out is not None else source / ONNX_NAME
    steps = tqdm(total=4, desc="export", unit="step", disable=not progress)

    steps.set_postfix_str("load")
    net = load_model(None, directory, epoch=epoch).eval()
    config = net.config
    graph = _graph_module(net)
    steps.update()

    steps.set_postfix_str("trace")
    images, subjects, shapes = _check_inputs(config, batch=2)
    takes_shape = config.variant == "gencrop-c"
    inputs = [torch.from_numpy(images), torch.from_numpy(subjects)] + (
        [torch.from_numpy(shapes)] if takes_shape else []
    )
    names = ["image", "subject"] + (["shape"] if takes_shape else [])
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic = {n: {0: batch} for n in ["image", "subject", "shape"][: len(names)]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph,
            tuple(inputs),
            dynamo=True,
            opset_version=OPSET,
            input_names=names,
            output_names=["crop", "weights"],
            dynamic_shapes=dynamic,
            verbose=False,
            external_data=False,
            optimize=False,
        )
    # Constant folding and dead code removal only (a smaller graph loads faster); the rewrite rules of a
    # full optimisation would fold BatchNorms into convolutions, and folded weights are not float16-exact
    # (onnxruntime folds them in float32 when it loads the file).
    import onnxscript.optimizer

    onnxscript.optimizer.fold_constants(program.model)
    onnxscript.optimizer.remove_unused_nodes(program.model)
    proto = program.model_proto
    steps.update()

    steps.set_postfix_str("convert")
    _strip_trace_info(proto)
    if half:
        _half_initializers(proto)
    meta = {
        "format": "gencrop-onnx-1",
        "gencrop_config": json.dumps(config.to_dict()),
        "gencrop_digest": weights_digest(source) or "",
        "gencrop_version": __version__,
        "input_size": str(config.image_size),
        "in_channels": str(config.in_channels),
        "channels": "RGB" + ("+subject mask (1 inside the subject)" if config.in_channels == 4 else ""),
        "variant": config.variant,
        "subject_weighting": config.subject_weighting,
        "mean": json.dumps(list(IMAGENET_MEAN)),
        "std": json.dumps(list(IMAGENET_STD)),
        "letterbox": "longest side resized to input_size (bilinear), centred, zero padding after normalisation",
        "inputs": "image (B,C,S,S) float32; subject (B,4) xyxy input pixels"
        + ("; shape (B,4) [area, log(aspect), has_area, has_aspect]" if takes_shape else ""),
        "outputs": "crop (B,4) xyxy / S; weights (B,rows,cols)",
    }
    del proto.metadata_props[:]
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    proto.producer_name = "gencrop"
    proto.producer_version = __version__
    onnx.checker.check_model(proto)
    steps.update()

    steps.set_postfix_str("check")
    with atomic_path(out) as tmp:
        onnx.save_model(proto, str(tmp))
        crop_diff, weight_diff = _compare(graph, tmp, config, takes_shape)
    steps.update()
    steps.close()
    return ExportReport(out, out.stat().st_size, config.variant, half, crop_diff, weight_diff)


def _compare(graph, path: Path, config, takes_shape: bool) -> tuple[float, float]:
    """Largest difference between onnxruntime and PyTorch on check inputs (batch of 3)."""
    import onnxruntime as ort
    import torch

    images, subjects, shapes = _check_inputs(config, batch=3, seed=1)
    feed = {"image": images, "subject": subjects} | ({"shape": shapes} if takes_shape else {})
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    crop, weights = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).run(
        ["crop", "weights"], feed
    )
    with torch.no_grad():
        ref = graph(*[torch.from_numpy(v) for v in feed.values()])
    return (
        float(np.abs(crop - ref[0].numpy()).max() * config.image_size),
        float(np.abs(weights - ref[1].numpy()).max()),
    )
