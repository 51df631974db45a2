"""The runtime seam: what a network needs to be told, and what it answers.

A :class:`Network` takes a batch of prepared arrays and returns the crops
(normalised ``xyxy``) and the cell weights behind them. The PyTorch runtime
(:mod:`.torch_network`) and the onnxruntime one (:mod:`.onnx_network`) both
implement it; :func:`gencrop.runtime.loading.load_network` picks one. This
module is below both runtimes, so it imports neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..shapes import shape_request

__all__ = ["MissingExtra", "Network", "NetworkInfo", "shape_request", "TORCH_HINT", "ONNX_HINT"]

TORCH_HINT = "pip install 'gencrop[torch]'"
ONNX_HINT = "pip install onnxruntime"


class MissingExtra(ImportError):
    """A component needs a package that is not installed; the message says what to install."""


@dataclass(frozen=True)
class NetworkInfo:
    """What pre- and post-processing need to know about a network (a subset of its config)."""

    image_size: int
    in_channels: int
    variant: str = "gencrop"
    extra: dict = field(default_factory=dict)
    subject_pull: float = 0.0  # framing of a given subject (GenCropConfig.subject_pull)

    @property
    def use_subject_mask(self) -> bool:
        return self.in_channels == 4

    @property
    def takes_shape(self) -> bool:
        return self.variant == "gencrop-c"

    @classmethod
    def from_config(cls, config: dict) -> "NetworkInfo":
        return cls(
            int(config["image_size"]),
            int(config["in_channels"]),
            config.get("variant", "gencrop"),
            dict(config.get("extra") or {}),
            float(config.get("subject_pull", 0.0)),
        )


class Network(Protocol):
    """A GenCrop network on some runtime."""

    info: NetworkInfo
    runtime: str  # "torch" | "onnx"

    def __call__(
        self, images: np.ndarray, subjects: np.ndarray, shapes: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``images`` (B, C, S, S) float32 letterboxed and normalised, ``subjects`` (B, 4) subject
        ``xyxy`` in input pixels, ``shapes`` (B, 4) GenCrop-C requests (None: no request) ->
        crops (B, 4) ``xyxy`` normalised by S, cell weights (B, rows, cols)."""
