"""Running a GenCrop network for inference, with PyTorch or with onnxruntime.

The seam between gencrop and a runtime is one call: a batch of prepared
arrays (letterboxed photos, subject boxes, shape requests) in, normalised
crops and cell weights out (:class:`~gencrop.runtime.base.Network`).
Everything around it (decoding, letterbox, subjects, mapping back) is
:class:`gencrop.inference.Cropper`'s, shared by both runtimes.

This package imports neither torch nor onnxruntime until a network is
loaded: the light install (onnxruntime, no torch) crops photos, and
``gencrop --help`` answers at once.
"""

from .base import MissingExtra, Network, NetworkInfo, shape_request
from .loading import RUNTIMES, load_network
from .files import CONFIG_NAME, DEFAULT_MODEL_DIR, ONNX_NAME, WEIGHTS_NAME, resolve_model_dir, weights_digest

__all__ = [
    "RUNTIMES",
    "MissingExtra",
    "Network",
    "NetworkInfo",
    "load_network",
    "shape_request",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "ONNX_NAME",
    "DEFAULT_MODEL_DIR",
    "resolve_model_dir",
    "weights_digest",
]
