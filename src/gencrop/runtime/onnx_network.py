"""The onnxruntime runtime: a network exported by ``gencrop export``, no torch needed.

The file carries what the pre-processing must reproduce (input size,
channels, normalisation, variant) in its metadata, and the digest of the
weights it was exported from (:func:`~gencrop.runtime.files.weights_digest`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .base import MissingExtra, NetworkInfo, ONNX_HINT
from .session_cache import cached_session

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover - exercised without onnxruntime
    raise MissingExtra(f"the onnx runtime needs onnxruntime: {ONNX_HINT}") from None

__all__ = ["OnnxNetwork", "read_metadata", "FORMAT"]

FORMAT = "gencrop-onnx-1"  # metadata "format": bumped when the inputs or outputs change meaning


def _options(optimize: bool = True, spin_wait: bool = True) -> "ort.SessionOptions":
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if not spin_wait:  # idle worker threads sleep instead of spinning (see load_network)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return opts


def read_metadata(path: str | Path) -> dict[str, str]:
    """The gencrop metadata of an exported file (without optimising the graph for running it)."""
    session = ort.InferenceSession(str(path), _options(optimize=False), providers=["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map)


def _providers(device) -> list[str]:
    kind = str(device or "cpu").split(":")[0]
    if kind == "cpu":
        return ["CPUExecutionProvider"]
    wanted = {"cuda": "CUDAExecutionProvider"}.get(kind)
    if wanted is None or wanted not in ort.get_available_providers():
        raise MissingExtra(
            f"onnxruntime here has no {kind} support (providers: "
            f"{', '.join(ort.get_available_providers())}); use --runtime torch or "
            f"`pip install onnxruntime-gpu`"
        )
    return [wanted, "CPUExecutionProvider"]


class OnnxNetwork:
    """An exported GenCrop network run by onnxruntime."""

    runtime = "onnx"

    def __init__(self, path: str | Path, device=None, *, spin_wait: bool = True):
        from ..data.letterbox import IMAGENET_MEAN, IMAGENET_STD

        self.path = Path(path)
        try:
            self.session = cached_session(self.path, _options(spin_wait=spin_wait), _providers(device))
        except MissingExtra:
            raise
        except Exception as e:  # onnxruntime raises its own exception types for unreadable files
            raise ValueError(f"{self.path}: not a readable ONNX model ({type(e).__name__}: {e})") from None
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        if meta.get("format") != FORMAT:
            raise ValueError(
                f"{self.path}: not a gencrop export (metadata format {meta.get('format')!r}, "
                f"expected {FORMAT!r}); export models with `gencrop export`"
            )
        mean, std = json.loads(meta["mean"]), json.loads(meta["std"])
        if not (np.allclose(mean, IMAGENET_MEAN) and np.allclose(std, IMAGENET_STD)):
            raise ValueError(
                f"{self.path}: normalisation mean {mean} / std {std} is not the ImageNet "
                f"normalisation gencrop's letterbox applies"
            )
        self.metadata = meta
        self.digest = meta.get("gencrop_digest")
        self.info = NetworkInfo.from_config(json.loads(meta["gencrop_config"]))
        self._inputs = {i.name for i in self.session.get_inputs()}

    def __call__(
        self, images: np.ndarray, subjects: np.ndarray, shapes: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        feed = {
            "image": np.ascontiguousarray(images, np.float32),
            "subject": np.ascontiguousarray(subjects, np.float32),
        }
        if "shape" in self._inputs:
            feed["shape"] = (
                np.zeros((len(images), 4), np.float32) if shapes is None else np.ascontiguousarray(shapes, np.float32)
            )
        crop, weights = self.session.run(["crop", "weights"], feed)
        return crop, weights
