"""The runtime seam: what a network needs to be told, and what it answers.

A :class:`Network` takes a batch of prepared arrays and returns the crops
(normalised ``xyxy``) and the cell weights behind them. The PyTorch runtime
(:mod:`.torch_network`) and the onnxruntime one (:mod:`.onnx_network`) both
implement it; :func:`load_network` picks one.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from .files import DEFAULT_MODEL_DIR, ONNX_NAME, resolve_model_dir, weights_digest

__all__ = [
    "RUNTIMES",
    "MissingExtra",
    "Network",
    "NetworkInfo",
    "load_network",
    "shape_request",
    "TORCH_HINT",
    "ONNX_HINT",
]

RUNTIMES = ("auto", "onnx", "torch")
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


def shape_request(area: float | None = None, aspect: float | None = None) -> list[float]:
    """The GenCrop-C request for a user's shape: ``[area, log(aspect), has_area, has_aspect]``.

    ``area`` in (0, 1] of the photo, ``aspect`` = width / height; None = let the model choose.
    """
    if area is not None and not 0 < area <= 1:
        raise ValueError(f"area must be a fraction of the photo in (0, 1]; got {area}")
    if aspect is not None and not aspect > 0:
        raise ValueError(f"aspect must be positive (width / height); got {aspect}")
    return [area or 0.0, math.log(aspect) if aspect else 0.0, float(area is not None), float(aspect is not None)]


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def onnx_state(directory: Path) -> str:
    """``"fresh"``, ``"stale"`` (made from other weights), or ``"missing"`` for a model directory's ONNX file."""
    path = directory / ONNX_NAME
    if not path.is_file():
        return "missing"
    from .onnx_network import read_metadata

    return _freshness(directory, read_metadata(path).get("gencrop_digest"))


def _freshness(directory: Path, made_from: str | None) -> str:
    current = weights_digest(directory)
    # A directory that ships only the ONNX file (no safetensors) has nothing to be stale against.
    return "fresh" if current is None or made_from == current else "stale"


def load_network(
    path: str | Path | None = None,
    *,
    runtime: str = "auto",
    device=None,
    epoch: int | None = None,
    spin_wait: bool = True,
) -> Network:
    """Load a model directory (``None``: the bundled model), hub id or ``.onnx`` file on a runtime.

    ``runtime``: ``"onnx"``, ``"torch"``, or ``"auto"``: onnxruntime when the
    model has an up-to-date ``model.onnx`` and no GPU device or epoch is asked
    for, else PyTorch. Missing packages raise :class:`MissingExtra` naming
    what to install; a stale ``model.onnx`` is never used.

    ``spin_wait``: onnxruntime's worker threads spin between the steps of a
    pass (the lowest latency for one caller, but the spinning takes the CPU
    from any other thread); a server that decodes photos beside the model
    turns it off. PyTorch ignores it.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}; got {runtime!r}")
    if path is not None and str(path).endswith(".onnx"):
        if runtime == "torch":
            raise ValueError(f"{path} is an ONNX file: it runs on the onnx runtime, not torch")
        if epoch is not None:
            raise ValueError("--epoch picks a PyTorch checkpoint, not part of an ONNX file")
        if not Path(path).is_file():
            raise FileNotFoundError(f"no such ONNX file: {path}")
        return _onnx(Path(path), device, spin_wait)
    directory = resolve_model_dir(path)
    has_onnx = (directory / ONNX_NAME).is_file()
    if runtime == "onnx":
        if epoch is not None:
            raise ValueError(
                "--epoch picks a PyTorch checkpoint; export that epoch "
                "(gencrop export DIR --epoch N -o FILE.onnx) and load the file"
            )
        if not has_onnx:
            raise FileNotFoundError(_onnx_problem(directory, "missing"))
        net = _onnx(directory / ONNX_NAME, device, spin_wait)
        if _freshness(directory, net.digest) != "fresh":
            raise ValueError(_onnx_problem(directory, "stale"))
        return net
    state = "missing"
    if runtime == "auto" and has_onnx:
        if (device is None or str(device) == "cpu") and epoch is None and _installed("onnxruntime"):
            net = _onnx(directory / ONNX_NAME, device, spin_wait)
            state = _freshness(directory, net.digest)
            if state == "fresh":
                return net
            print(f"gencrop: warning: {_onnx_problem(directory, state)}; using PyTorch", file=sys.stderr)
    if not _installed("torch"):
        if runtime == "torch" or state == "fresh":
            raise MissingExtra(f"the PyTorch runtime is not installed: {TORCH_HINT}")
        why = (
            "onnxruntime is not installed"
            if has_onnx and not _installed("onnxruntime")
            else _onnx_problem(directory, state)
            if epoch is None and state != "fresh"
            else "--epoch needs the PyTorch runtime"
        )
        raise MissingExtra(f"{why}; and the PyTorch runtime is not installed: {TORCH_HINT}")
    from .torch_network import TorchNetwork

    return TorchNetwork.from_directory(directory, epoch=epoch, device=device)


def _onnx_problem(directory: Path, state: str) -> str:
    bundled = directory.resolve() == DEFAULT_MODEL_DIR
    where = "the bundled model" if bundled else str(directory)
    fix = f"gencrop export {'default' if bundled else directory}"
    if state == "stale":
        return f"{directory / ONNX_NAME} was exported from other weights than {where}'s; re-export it: {fix}"
    return f"{where} has no {ONNX_NAME}; export one: {fix}"


def _onnx(path: Path, device, spin_wait: bool = True) -> Network:
    if not _installed("onnxruntime"):
        raise MissingExtra(f"the onnx runtime needs onnxruntime: {ONNX_HINT}")
    from .onnx_network import OnnxNetwork

    return OnnxNetwork(path, device=device, spin_wait=spin_wait)
