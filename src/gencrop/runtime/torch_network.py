"""The PyTorch runtime: the GenCrop module itself, on any device torch supports."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from .base import MissingExtra, NetworkInfo, TORCH_HINT

try:
    import torch
except ImportError:  # pragma: no cover - exercised on the light install
    raise MissingExtra(f"the PyTorch runtime is not installed: {TORCH_HINT}") from None

__all__ = ["TorchNetwork", "default_device"]


def default_device() -> "torch.device":
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _autocast(device: torch.device):
    """fp16 autocast on CUDA only: CPU inference stays float32 (faster and exact there)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


class TorchNetwork:
    """A GenCrop module made ready for inference (BatchNorms folded, channels-last)."""

    runtime = "torch"

    def __init__(self, model, device=None):
        from ..modeling.fusion import optimize_for_inference

        self.device = torch.device(device) if device is not None else default_device()
        c = model.config
        # BatchNorms are folded into convolutions: ``self.model`` is for inference only.
        self.model = optimize_for_inference(model.eval().to(self.device), c.image_size, c.in_channels)
        self.info = NetworkInfo.from_config(c.to_dict())

    @classmethod
    def from_directory(cls, directory: str | Path, epoch: int | None = None, device=None) -> "TorchNetwork":
        from ..modeling.checkpoints import load_model

        return cls(load_model(None, directory, epoch=epoch), device=device)

    @torch.inference_mode()
    def __call__(
        self, images: np.ndarray, subjects: np.ndarray, shapes: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(images, np.float32)).to(self.device)
        x = x.contiguous(memory_format=torch.channels_last)
        s = torch.as_tensor(np.asarray(subjects, np.float32), device=self.device)
        cond = (
            {}
            if shapes is None
            else {"target_shape": torch.as_tensor(np.asarray(shapes, np.float32), device=self.device)}
        )
        with _autocast(self.device):
            out = self.model(x, s, **cond)
        return out.crop.float().cpu().numpy(), out.weights.float().cpu().numpy()
