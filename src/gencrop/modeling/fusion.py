"""Inference-time speed-ups that keep the outputs (to float rounding).

Folding each BatchNorm into the convolution that feeds it removes a full
pass over every feature map, which is a large share of the time of the small
mobile backbones on CPU. Which convolution feeds which BatchNorm is found by
watching one forward pass (the BatchNorm's input must be exactly that
convolution's output tensor), so no per-architecture table is needed.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

ModelT = TypeVar("ModelT", bound=nn.Module)  # a GenCrop; any network with BatchNorms works


def _bn_replacement(bn: nn.BatchNorm2d) -> nn.Module:
    """What remains of a BatchNorm once folded: nothing, or its fused activation (timm BatchNormAct2d)."""
    act = getattr(bn, "act", None)
    drop = getattr(bn, "drop", None)
    parts = [m for m in (drop, act) if m is not None and not isinstance(m, nn.Identity)]
    if not parts:
        return nn.Identity()
    return parts[0] if len(parts) == 1 else nn.Sequential(*parts)


@torch.no_grad()
def fold_batchnorm(module: nn.Module, example: torch.Tensor) -> int:
    """Fold eval-mode BatchNorm2d layers into the Conv2d feeding them; returns how many were folded.

    ``module`` must be in eval mode; ``example`` is any valid input.
    """
    if module.training:
        raise ValueError("fold_batchnorm needs a module in eval mode")
    produced: dict[int, nn.Conv2d] = {}
    pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d, int]] = []
    uses: dict[int, int] = {}
    keep_alive: list[torch.Tensor] = []  # so that tensor ids are not reused during the pass
    hooks = []

    def conv_hook(mod, inputs, output):
        keep_alive.append(output)
        produced[id(output)] = mod

    def any_hook(mod, inputs, output):
        keep_alive.append(output)
        for t in inputs:
            if isinstance(t, torch.Tensor):
                uses[id(t)] = uses.get(id(t), 0) + 1
        if isinstance(mod, nn.BatchNorm2d) and inputs and id(inputs[0]) in produced:
            pairs.append((produced[id(inputs[0])], mod, id(inputs[0])))

    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        if len(list(m.children())) == 0 or isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_hook(any_hook))
    try:
        module(example)
    finally:
        for h in hooks:
            h.remove()

    # A conv output that is used elsewhere too (not only by the BN) cannot be folded.
    parents = {id(child): (parent, name) for parent in module.modules() for name, child in parent.named_children()}
    folded = 0
    seen: set[int] = set()
    for conv, bn, tensor_id in pairs:
        mean, var = bn.running_mean, bn.running_var
        if uses.get(tensor_id, 0) != 1 or id(bn) in seen or id(conv) in seen or mean is None or var is None:
            continue
        seen.update((id(bn), id(conv)))
        inv_std = 1 / torch.sqrt(var + bn.eps)
        scale = bn.weight * inv_std if bn.affine else inv_std
        shift = (bn.bias if bn.affine else 0) - mean * scale
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        if conv.bias is None:
            conv.bias = nn.Parameter(shift.clone())
        else:
            conv.bias.copy_(conv.bias * scale + shift)
        parent, name = parents[id(bn)]
        setattr(parent, name, _bn_replacement(bn))
        folded += 1
    return folded


def optimize_for_inference(model: ModelT, image_size: int, in_channels: int) -> ModelT:
    """Fold BatchNorms of the backbone and use channels-last memory (faster convolutions on CPU)."""
    model.eval()
    example = torch.zeros(1, in_channels, image_size, image_size, device=next(model.parameters()).device)
    backbone = model.backbone
    if not isinstance(backbone, nn.Module):
        raise TypeError(f"{type(model).__name__} has no backbone module to fold")
    fold_batchnorm(backbone, example)
    return model.to(memory_format=torch.channels_last)
