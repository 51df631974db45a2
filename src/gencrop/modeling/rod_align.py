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
from torch import Tensor, nn

__all__ = ["rod_align", "rod_align_avg", "rod_align_avg_per_image", "RoDAlign", "RoDAlignAvg"]


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


def _pool_matrix(count: int) -> Tensor:
    """(count-1 x count) matrix of a 1-D average pool of width 2, stride 1."""
    mat = torch.zeros(count - 1, count, dtype=torch.float64)
    idx = torch.arange(count - 1)
    mat[idx, idx] = 0.5
    mat[idx, idx + 1] = 0.5
    return mat


class _Sampling:
    """The box-independent part of RoD-align: the sampled grid of every image, and each box's masks.

    With ``G`` the sampled grid of an image, ``u``/``v`` the rows/columns of
    samples inside a box and ``P`` the (optional) pooling matrices, the output is
    ``P (G * (1 - u v^T)) P^T = P G P^T - (P diag(u)) G (P diag(v))^T``. The
    second form needs no per-box copy of the grid and no scatter in the backward
    pass: two matrix products per image.
    """

    def __init__(
        self, features: Tensor, boxes_xyxy: Tensor, samples: tuple[int, int], spatial_scale: float, pool: bool
    ):
        ah, aw = samples
        _, self.channels, height, width = features.shape
        pos_y, pos_x = _sample_positions(height, ah), _sample_positions(width, aw)
        dev, self.dtype = features.device, features.dtype
        # The grid is tiny (B*C*A*A values): compute it in float64 for float32 input
        # (as the original kernel did), float32 for half types; MPS has no float64.
        half = self.dtype in (torch.float16, torch.bfloat16)
        exact = torch.float32 if (half or dev.type == "mps") else torch.float64
        work = torch.float32 if half else self.dtype

        wy = _interpolation_matrix(height, pos_y).to(dev, exact)
        wx = _interpolation_matrix(width, pos_x).to(dev, exact)
        grid = torch.matmul(torch.matmul(wy, features.to(exact)), wx.t()).to(work)  # (B, C, A_h, A_w)

        py = (_pool_matrix(ah) if pool else torch.eye(ah, dtype=torch.float64)).to(dev, work)
        px = (_pool_matrix(aw) if pool else torch.eye(aw, dtype=torch.float64)).to(dev, work)
        self.oh, self.ow, self.ah, self.aw = py.shape[0], px.shape[0], ah, aw

        # Samples inside each scaled box (both ends inclusive): rows u (K, A_h), columns v (K, A_w).
        boxes = boxes_xyxy.detach().to(torch.float64) * spatial_scale
        sy, sx = pos_y.to(dev), pos_x.to(dev)
        v = ((sx[None, :] >= boxes[:, 0:1]) & (sx[None, :] <= boxes[:, 2:3])).to(work)
        u = ((sy[None, :] >= boxes[:, 1:2]) & (sy[None, :] <= boxes[:, 3:4])).to(work)
        self.left = py[None] * u[:, None, :]  # (K, O_h, A_h) = P diag(u)
        self.right = px[None] * v[:, None, :]  # (K, O_w, A_w) = P diag(v)
        self.base = py @ grid @ px.t()  # (B, C, O_h, O_w)
        # (A_h, C*A_w) layout of each image's grid, so one product serves all its boxes.
        self.flat = grid.permute(0, 2, 1, 3).reshape(grid.shape[0], ah, self.channels * aw)

    def grouped(self, per_image: int) -> Tensor:
        """(B, n, C, O_h, O_w) when the boxes are ``per_image`` boxes of each image, in image order."""
        c, oh, ow, ah, aw = self.channels, self.oh, self.ow, self.ah, self.aw
        num_images = self.flat.shape[0]
        t = torch.bmm(self.left.reshape(num_images, per_image * oh, ah), self.flat)  # (B, n*O_h, C*A_w)
        t = torch.bmm(t.reshape(-1, oh * c, aw), self.right.transpose(1, 2))  # (K, O_h*C, O_w)
        inside = t.reshape(num_images, per_image, oh, c, ow).permute(0, 1, 3, 2, 4)
        return (self.base[:, None] - inside).to(self.dtype)

    def indexed(self, batch_index: Tensor) -> Tensor:
        """(K, C, O_h, O_w) for boxes of any images in any order."""
        c, oh, ow, ah, aw = self.channels, self.oh, self.ow, self.ah, self.aw
        k = batch_index.shape[0]
        parts, rows = [], []
        for b in range(self.flat.shape[0]):
            sel = torch.nonzero(batch_index == b).flatten()
            n = sel.numel()
            if n == 0:
                continue
            t = self.left[sel].reshape(n * oh, ah) @ self.flat[b]  # (n*O_h, C*A_w)
            t = t.reshape(n, oh * c, aw) @ self.right[sel].transpose(1, 2)  # (n, O_h*C, O_w)
            parts.append(self.base[b][None] - t.reshape(n, oh, c, ow).transpose(1, 2))
            rows.append(sel)
        if not parts:
            return self.base.new_zeros(0, c, oh, ow).to(self.dtype)
        out = torch.cat(parts)
        position = torch.empty_like(batch_index)
        position[torch.cat(rows)] = torch.arange(k, device=batch_index.device)
        return out[position].to(self.dtype)


def _rod_align(features: Tensor, rois: Tensor, samples: tuple[int, int], spatial_scale: float, pool: bool) -> Tensor:
    """Shared implementation; ``pool`` applies the 2 x 2 stride-1 average of the averaged form."""
    sampling = _Sampling(features, rois[:, 1:], samples, spatial_scale, pool)
    batch_index = rois[:, 0].detach().long()
    num_images, k = features.shape[0], rois.shape[0]
    per_image = k // max(num_images, 1)
    if k == per_image * num_images and torch.equal(
        batch_index, torch.arange(num_images, device=features.device).repeat_interleave(per_image)
    ):
        # The common case (the crop scorer): the same number of boxes per image, in image order.
        return sampling.grouped(per_image).flatten(0, 1)
    return sampling.indexed(batch_index)


def rod_align_avg_per_image(features: Tensor, boxes_xyxy: Tensor, output_size: int, spatial_scale: float) -> Tensor:
    """Averaged RoD-align of ``n`` boxes per image: ``boxes_xyxy`` (B, n, 4) -> (B, n, C, A, A).

    The crop scorer's case, with no test of the box layout: a traced or exported
    graph has no data-dependent branch.
    """
    b, n, _ = boxes_xyxy.shape
    sampling = _Sampling(
        features, boxes_xyxy.reshape(-1, 4), (output_size + 1, output_size + 1), spatial_scale, pool=True
    )
    return sampling.grouped(n)


def rod_align(features: Tensor, rois: Tensor, output_size: int | tuple[int, int], spatial_scale: float) -> Tensor:
    """RoD-align: ``features`` (B, C, H, W), ``rois`` (K, 5) ``[batch_index, x1, y1, x2, y2]``.

    Returns (K, C, A_h, A_w). Box coordinates are in input-image pixels and
    are scaled by ``spatial_scale`` onto the feature map.
    """
    ah, aw = (output_size, output_size) if isinstance(output_size, int) else output_size
    return _rod_align(features, rois, (ah, aw), spatial_scale, pool=False)


def rod_align_avg(features: Tensor, rois: Tensor, output_size: int | tuple[int, int], spatial_scale: float) -> Tensor:
    """Averaged RoD-align: sample ``(A+1) x (A+1)`` then average-pool 2 x 2 with stride 1."""
    ah, aw = (output_size, output_size) if isinstance(output_size, int) else output_size
    return _rod_align(features, rois, (ah + 1, aw + 1), spatial_scale, pool=True)


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
