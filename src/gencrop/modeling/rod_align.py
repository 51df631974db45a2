"""RoD-align ("region of discard" align) in pure PyTorch.

RoD-align describes what lies *outside* a candidate crop: it samples one
fixed ``A x A`` grid over the whole feature map and zeroes the samples that
fall inside the crop. Because the grid does not depend on the box, the
bilinear sampling is done once per image as two small matrix products
(``Wy @ F @ Wx^T``); each box then only multiplies that grid by its own
keep-mask. This is exact, differentiable by autograd, works on any device
and dtype, and needs nothing compiled (the prior implementation was a C++/CUDA
extension, hard to build).

Conventions (those of the original kernel, which trained checkpoints rely on):

* sample ``p`` of ``A`` along an axis of length ``L`` sits at
  ``p * (L - 1.001) / (A - 1)``; it is interpolated from the 2 x 2 cell whose
  top-left corner is ``min(floor(pos), L - 2)``;
* a sample is discarded when ``x1*s <= x <= x2*s`` and ``y1*s <= y <= y2*s``
  (both ends inclusive), where ``s`` is ``spatial_scale``;
* the "averaged" form samples ``(A+1) x (A+1)`` and average-pools 2 x 2 with
  stride 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["rod_align", "rod_align_avg", "RoDAlign", "RoDAlignAvg"]


def _sample_positions(length: int, count: int) -> Tensor:
    """Positions of the fixed sampling grid along one axis.

    Computed in float32 like the original kernel (so interpolation weights
    agree to the last bit), returned as float64 for the arithmetic after it.
    """
    if count == 1:
        return torch.zeros(1, dtype=torch.float64)
    span = torch.tensor(length - 1.001, dtype=torch.float32)
    step = span / torch.tensor(count - 1, dtype=torch.float32)
    return (torch.arange(count, dtype=torch.float32) * step).to(torch.float64)


def _interpolation_matrix(length: int, positions: Tensor) -> Tensor:
    """(count x length) matrix whose rows hold the bilinear weights of each sample."""
    count = positions.numel()
    mat = torch.zeros(count, length, dtype=torch.float64)
    if length == 1:
        mat[:, 0] = 1.0
        return mat
    low = torch.clamp(positions.floor().long(), max=length - 2)
    frac = positions - low.to(torch.float64)
    rows = torch.arange(count)
    mat[rows, low] += 1.0 - frac
    mat[rows, low + 1] += frac
    return mat


def rod_align(features: Tensor, rois: Tensor, output_size: int | tuple[int, int],
              spatial_scale: float) -> Tensor:
    """RoD-align: ``features`` (B, C, H, W), ``rois`` (K, 5) ``[batch_index, x1, y1, x2, y2]``.

    Returns (K, C, A_h, A_w). Box coordinates are in input-image pixels and
    are scaled by ``spatial_scale`` onto the feature map.
    """
    ah, aw = (output_size, output_size) if isinstance(output_size, int) else output_size
    _, _, height, width = features.shape
    pos_y, pos_x = _sample_positions(height, ah), _sample_positions(width, aw)
    dev, dt = features.device, features.dtype
    # The grid is tiny (B*C*A*A values), so it is computed in higher precision
    # than the features: float64 for float32 input (the original kernel used
    # doubles too), float32 for half types. MPS has no float64.
    work = torch.float32 if (dt in (torch.float16, torch.bfloat16) or dev.type == "mps") else torch.float64

    # One grid per image: (B, C, A_h, A_w) = Wy @ F @ Wx^T.
    wy = _interpolation_matrix(height, pos_y).to(dev, work)
    wx = _interpolation_matrix(width, pos_x).to(dev, work)
    grid = torch.matmul(torch.matmul(wy, features.to(work)), wx.t()).to(dt)

    # Per-box keep mask: zero where the sample lies inside the scaled box.
    boxes = rois[:, 1:].detach().to(torch.float64) * spatial_scale
    py, px = pos_y.to(dev), pos_x.to(dev)
    inside_x = (px[None, :] >= boxes[:, 0:1]) & (px[None, :] <= boxes[:, 2:3])  # (K, A_w)
    inside_y = (py[None, :] >= boxes[:, 1:2]) & (py[None, :] <= boxes[:, 3:4])  # (K, A_h)
    keep = ~(inside_y[:, :, None] & inside_x[:, None, :])                       # (K, A_h, A_w)

    batch_index = rois[:, 0].detach().long()
    return grid[batch_index] * keep[:, None].to(dt)


def rod_align_avg(features: Tensor, rois: Tensor, output_size: int | tuple[int, int],
                  spatial_scale: float) -> Tensor:
    """Averaged RoD-align: sample ``(A+1) x (A+1)`` then average-pool 2 x 2 with stride 1."""
    ah, aw = (output_size, output_size) if isinstance(output_size, int) else output_size
    out = rod_align(features, rois, (ah + 1, aw + 1), spatial_scale)
    return F.avg_pool2d(out, kernel_size=2, stride=1)


class RoDAlign(nn.Module):
    def __init__(self, output_size: int | tuple[int, int], spatial_scale: float):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale

    def forward(self, features: Tensor, rois: Tensor) -> Tensor:
        return rod_align(features, rois, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"


class RoDAlignAvg(RoDAlign):
    def forward(self, features: Tensor, rois: Tensor) -> Tensor:
        return rod_align_avg(features, rois, self.output_size, self.spatial_scale)
