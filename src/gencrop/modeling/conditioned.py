"""GenCrop-C: GenCrop asked for a crop of a given shape (area fraction and/or aspect ratio).

The requested shape is embedded by a small MLP into a few memory tokens; the
cell tokens query them through a transformer *decoder* (self-attention
among cells, cross-attention to the request) in place of GenCrop's encoder.
Everything else (backbone, scoring, subject weighting, loss) is GenCrop's.

A request is four numbers ``[area, log(aspect), has_area, has_aspect]``:
``area`` is the crop's area over the photo's, ``aspect`` its width over
height. Either may be left out (flag 0); training drops each part at random
so one model answers "4:5, any size", "half the photo, any shape", both, or
neither. During training the request is read off the true frame.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..shapes import shape_request
from .gencrop import GenCrop

__all__ = ["GenCropC", "CONDITION_DIM", "crop_shape", "shape_condition", "training_condition"]

CONDITION_DIM = 4
_MEMORY_TOKENS = 4


def crop_shape(crop_xyxy: Tensor, valid_xyxy: Tensor) -> Tensor:
    """(B, 4) request that describes each true frame exactly: its area fraction of the photo and its aspect."""
    cw = (crop_xyxy[:, 2] - crop_xyxy[:, 0]).clamp(min=1e-6)
    ch = (crop_xyxy[:, 3] - crop_xyxy[:, 1]).clamp(min=1e-6)
    vw = (valid_xyxy[:, 2] - valid_xyxy[:, 0]).clamp(min=1e-6)
    vh = (valid_xyxy[:, 3] - valid_xyxy[:, 1]).clamp(min=1e-6)
    area = (cw * ch) / (vw * vh)
    ones = torch.ones_like(area)
    return torch.stack([area, torch.log(cw / ch), ones, ones], dim=1).float()


def shape_condition(batch_size: int, area: float | None = None, aspect: float | None = None, device=None) -> Tensor:
    """The request for a user's shape: ``area`` in (0, 1], ``aspect`` = width / height; None = any."""
    return torch.tensor([shape_request(area, aspect)] * batch_size, dtype=torch.float32, device=device)


def training_condition(crop_xyxy: Tensor, valid_xyxy: Tensor, drop_prob: float = 0.25) -> Tensor:
    """The true frame's shape with each part independently withheld with probability ``drop_prob``."""
    cond = crop_shape(crop_xyxy, valid_xyxy)
    keep = (torch.rand(cond.shape[0], 2, device=cond.device) >= drop_prob).float()
    return torch.cat([cond[:, :2] * keep, keep], dim=1)


class GenCropC(GenCrop):
    """GenCrop whose cells read the requested crop shape. ``forward(images, subject, target_shape=None)``."""

    def _build_cell_transformer(self) -> nn.Module:
        c = self.config
        hidden = 4 * c.cell_channels
        self.shape_embed = nn.Sequential(
            nn.Linear(CONDITION_DIM, hidden), nn.ReLU(), nn.Linear(hidden, _MEMORY_TOKENS * c.cell_channels)
        )
        layer = nn.TransformerDecoderLayer(c.cell_channels, c.num_heads, c.ffn_channels, c.dropout)
        return nn.TransformerDecoder(layer, c.num_layers)

    def shape_conditioning(self, n: int, aspect: float | None = None, area: float | None = None) -> dict:
        """The ``forward`` keyword arguments that ask for a shape (None = let the model choose that part)."""
        device = next(self.parameters()).device
        return {"target_shape": shape_condition(n, area=area, aspect=aspect, device=device)}

    def encode_cells(self, features: Tensor, target_shape: Tensor | None = None, **_unused) -> Tensor:
        b, ch, h, w = features.shape
        if target_shape is None:  # no request: "any area, any aspect"
            target_shape = torch.zeros(b, CONDITION_DIM, device=features.device)
        memory = self.shape_embed(target_shape.to(features.dtype)).view(b, _MEMORY_TOKENS, ch).transpose(0, 1)
        # positions are added batch-first, as SinusoidalPositions expects: each cell its own position
        tokens = self.pos_encoding(features.flatten(2).transpose(1, 2)).transpose(0, 1)  # (HW, B, C)
        return self.box_head(self.encoder(tokens, memory)).permute(1, 2, 0).reshape(b, 4, h, w)
