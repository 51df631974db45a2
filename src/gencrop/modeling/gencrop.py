"""The GenCrop cropping network.

A CNN backbone gives stride-8/16/32 features, fused at stride 16 into a small
32-channel map. Each cell of that map is a token for a transformer encoder,
and a linear head turns every token into one crop box (offsets added to the
cell's anchor). Every box is scored from what lies inside it (RoI-align) and
outside it (RoD-align); the scores are softmaxed over the cells the subject
covers, and the prediction is the score-weighted average of the boxes.

Two conventions of the original implementation are kept because trained
checkpoints depend on them (``transpose_anchors=True`` reproduces them):

* the anchor of the cell in row ``r``, column ``c`` was added as
  ``(x, y) = centre(r), centre(c)``, i.e. transposed;
* the softmax is over ``logits * subject_cell_mask`` (cells outside the
  subject get logit 0, not -inf), with the mask normalised to sum to ~1.

The second barely restricts anything: a subject over K cells divides their
logits by K, so the weights end up nearly uniform over *all* cells and the
crop hardly depends on the subject. ``subject_weighting="restricted"`` is a
true softmax over the subject's cells at full logit scale (a training option:
the bundled model keeps ``"original"``, which did better on its data);
``"original"`` stays the default so old checkpoints load unchanged.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import roi_align

from ..runtime.files import CONFIG_NAME, WEIGHTS_NAME
from .backbone import Backbone
from .rod_align import rod_align_avg_per_image

__all__ = [
    "GenCropConfig",
    "GenCropOutput",
    "GenCrop",
    "subject_cell_mask",
    "subject_softmax",
    "cell_anchors",
    "SUBJECT_WEIGHTINGS",
    "LEGACY_DEFAULTS",
]


@dataclass
class GenCropConfig:
    """Everything needed to rebuild a GenCrop network (saved as ``config.json``)."""

    arch: str = "tf_efficientnet_lite0"
    image_size: int = 256
    in_channels: int = 3  # 4 = RGB + binary subject-mask channel
    variant: str = "gencrop"  # "gencrop" | "gencrop-c" (requested shape)
    fuse_channels: int = 256
    cell_channels: int = 32
    num_heads: int = 8
    num_layers: int = 2
    ffn_channels: int = 2048
    dropout: float = 0.1
    # Dropout on the cell tokens once their positions are added, as in the original
    # code's PositionalEncoding; a config.json without the field means 0 (see LEGACY_DEFAULTS).
    positional_dropout: float = 0.1
    roi_size: int = 5
    score_channels: int = 128
    mask_epsilon: float = 1e-4
    transpose_anchors: bool = True  # original convention; see module docstring
    subject_weighting: str = "original"  # "original" | "restricted"; see module docstring
    # How ImageNet weights start the subject-mask input channel (in_channels 4): "timm" adapts the
    # pretrained first convolution as timm's in_chans=4 does (the original code's way), "zeros"
    # leaves the RGB filters as they are and gives the mask zero weight. Training only.
    mask_channel_init: str = "timm"
    # Framing of a given subject at inference (not used by the network): the crop's centre moves
    # this fraction of the way toward the subject's centre (gencrop.shapes.pull_toward); chosen on
    # validation photos for each shipped model.
    subject_pull: float = 0.0
    extra: dict = field(default_factory=dict)  # free-form metadata (training recipe, ...)

    @property
    def stride(self) -> int:
        return 16

    @property
    def grid_size(self) -> int:
        return self.image_size // self.stride

    @property
    def use_subject_mask(self) -> bool:
        return self.in_channels == 4

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GenCropConfig":
        """A saved config; fields it predates take the values its model was built with (LEGACY_DEFAULTS)."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown GenCrop config fields: {sorted(unknown)}")
        return cls(**{**LEGACY_DEFAULTS, **d})


#: What a config.json written before a field existed meant: new models default to the original
#: code's behaviour, models saved without these fields keep training and loading as they were built.
LEGACY_DEFAULTS = {"positional_dropout": 0.0, "mask_channel_init": "zeros"}
MASK_CHANNEL_INITS = ("timm", "zeros")


@dataclass
class GenCropOutput:
    crop: Tensor  # (B, 4) predicted crop, xyxy normalised by the input size
    cell_crops: Tensor  # (B, N, 4) one crop per cell, xyxy normalised, N = rows * cols
    weights: Tensor  # (B, rows, cols) softmax weights of the cells
    logits: Tensor  # (B, N) crop scores before the subject mask


def cell_anchors(grid: int, image_size: int, stride: int = 16) -> Tensor:
    """(grid, grid, 2) normalised cell centres, ``[row, col] = (centre(row), centre(col))``."""
    centres = (stride / 2 + stride * torch.arange(grid, dtype=torch.float32)) / image_size
    return torch.stack(torch.meshgrid(centres, centres, indexing="ij"), dim=-1)


def subject_cell_mask(subject_xyxy: Tensor, grid: int, stride: int = 16, eps: float = 1e-4) -> Tensor:
    """(B, grid*grid) normalised mask of the cells a subject box (input pixels) overlaps.

    Coordinates are truncated toward zero, rows ``floor(y1/s) .. ceil(y2/s)-1``
    and columns likewise are set (clipped at the border), and the mask is
    divided by ``sum + eps``; an empty box gives all zeros.
    """
    b = subject_xyxy.shape[0]
    s = torch.trunc(subject_xyxy.detach().float())
    idx = torch.arange(grid, device=subject_xyxy.device, dtype=torch.float32)
    lo_c, hi_c = torch.floor(s[:, 0:1] / stride), torch.ceil(s[:, 2:3] / stride)
    lo_r, hi_r = torch.floor(s[:, 1:2] / stride), torch.ceil(s[:, 3:4] / stride)
    cols, rows = _slice_selection(lo_c, hi_c, grid, idx), _slice_selection(lo_r, hi_r, grid, idx)
    mask = (rows[:, :, None] & cols[:, None, :]).reshape(b, -1).float()
    return mask / (mask.sum(dim=1, keepdim=True) + eps)


def _slice_selection(lo: Tensor, hi: Tensor, grid: int, idx: Tensor) -> Tensor:
    """(B, grid) bool: the cells ``a[lo:hi]`` selects, Python-slice semantics included.

    A negative bound counts from the end (rare: boxes left of/above the input),
    as it did in the original code. Written without data-dependent branches so
    that traced and exported graphs keep it.
    """

    def bound(v: Tensor) -> Tensor:
        return torch.where(v < 0, (v + grid).clamp(min=0), v.clamp(max=grid))

    return (idx[None] >= bound(lo)) & (idx[None] < bound(hi))


SUBJECT_WEIGHTINGS = ("original", "restricted")
# Logit of the cells outside the subject under "restricted": exp() of it is 0 in
# float16 too, and unlike -inf it cannot turn into NaN.
_OUTSIDE_LOGIT = -1e4


def subject_softmax(logits: Tensor, cell_mask: Tensor, weighting: str = "original") -> Tensor:
    """(B, N) cell weights from crop scores and the subject-cell mask of :func:`subject_cell_mask`.

    ``"original"``: ``softmax(logits * mask)``, the research code's formula.
    ``"restricted"``: softmax over the cells the subject covers, logits unscaled;
    a subject that covers no cell lets every cell take part.
    """
    if weighting == "original":
        return torch.softmax(logits * cell_mask, dim=1)
    inside = cell_mask > 0
    inside = inside | ~inside.any(dim=1, keepdim=True)
    return torch.softmax(logits.masked_fill(~inside, _OUTSIDE_LOGIT), dim=1)


class SinusoidalPositions(nn.Module):
    """Fixed sinusoidal encoding added to the cell tokens (batch, cells, channels), then dropout."""

    def __init__(self, channels: int, length: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        pos = torch.arange(length, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, channels, 2, dtype=torch.float32) * (-math.log(10000.0) / channels))
        pe = torch.zeros(length, channels)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.dropout(tokens + self.pe[None, : tokens.shape[1]])


class CropScorer(nn.Module):
    """Scores crops from RoI-align (inside) and averaged RoD-align (outside) features."""

    def __init__(self, channels: int, roi_size: int, hidden: int):
        super().__init__()
        self.roi_size = roi_size
        self.conv = nn.Conv2d(2 * channels, hidden, kernel_size=roi_size)
        self.fc1 = nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, boxes_xyxy: Tensor, features: Tensor, image_size: int) -> Tensor:
        """``boxes_xyxy`` (B, N, 4) normalised; returns (B, N) scores."""
        b, n, _ = boxes_xyxy.shape
        pix = boxes_xyxy.detach().clamp(0, 1) * image_size
        pix = pix.to(features.dtype)
        batch_index = torch.arange(b, device=pix.device, dtype=pix.dtype).repeat_interleave(n)
        rois = torch.cat([batch_index[:, None], pix.reshape(-1, 4)], dim=1)
        scale = features.shape[-1] / image_size
        inside = roi_align(features, rois, output_size=self.roi_size, spatial_scale=scale)
        outside = rod_align_avg_per_image(features, pix, self.roi_size, spatial_scale=scale).flatten(0, 1)
        x = F.relu(self.conv(torch.cat([inside, outside], dim=1))).flatten(1)
        return self.fc2(F.relu(self.fc1(x))).view(b, n)


class GenCrop(nn.Module):
    """The GenCrop network. ``forward(images, subject_xyxy)`` -> :class:`GenCropOutput`."""

    config_class = GenCropConfig

    def __init__(self, config: GenCropConfig | None = None, **kwargs):
        super().__init__()
        config = config or GenCropConfig(**kwargs)
        if config.image_size % config.stride:
            raise ValueError(f"image_size must be a multiple of {config.stride}; got {config.image_size}")
        if config.subject_weighting not in SUBJECT_WEIGHTINGS:
            raise ValueError(f"subject_weighting must be one of {SUBJECT_WEIGHTINGS}; got {config.subject_weighting!r}")
        if config.mask_channel_init not in MASK_CHANNEL_INITS:
            raise ValueError(f"mask_channel_init must be one of {MASK_CHANNEL_INITS}; got {config.mask_channel_init!r}")
        self.config = config
        c = config
        self.backbone = Backbone(c.arch, c.in_channels)
        ch8, ch16, ch32 = self.backbone.channels
        self.fuse8 = nn.Conv2d(ch8, c.fuse_channels, 1)
        self.fuse16 = nn.Conv2d(ch16, c.fuse_channels, 1)
        self.fuse32 = nn.Conv2d(ch32, c.fuse_channels, 1)
        self.fuse_out = nn.Conv2d(c.fuse_channels, c.cell_channels, 1)

        grid = c.grid_size
        self.pos_encoding = SinusoidalPositions(c.cell_channels, grid * grid, c.positional_dropout)
        self.encoder = self._build_cell_transformer()
        self.box_head = nn.Linear(c.cell_channels, 4)
        self.register_buffer("anchors", cell_anchors(grid, c.image_size, c.stride), persistent=False)
        self.scorer = CropScorer(c.cell_channels, c.roi_size, c.score_channels)

    def _build_cell_transformer(self) -> nn.Module:
        c = self.config
        # batch_first only changes the tensor layout (same weights as the original
        # sequence-first encoder) and enables PyTorch's fused inference path.
        layer = nn.TransformerEncoderLayer(c.cell_channels, c.num_heads, c.ffn_channels, c.dropout, batch_first=True)
        return nn.TransformerEncoder(layer, c.num_layers, enable_nested_tensor=False)

    # -- stages ------------------------------------------------------------------
    def cell_features(self, images: Tensor) -> Tensor:
        """(B, C, S, S) -> the fused stride-16 map (B, cell_channels, S/16, S/16)."""
        f8, f16, f32 = self.backbone(images)
        size = f16.shape[-2:]
        fused = (
            F.interpolate(self.fuse8(f8), size=size, mode="bilinear", align_corners=True)
            + self.fuse16(f16)
            + F.interpolate(self.fuse32(f32), size=size, mode="bilinear", align_corners=True)
        )
        return F.relu(self.fuse_out(fused))

    def encode_cells(self, features: Tensor, **conditioning) -> Tensor:
        """Cell tokens -> per-cell box offsets (B, 4, rows, cols)."""
        b, ch, h, w = features.shape
        tokens = self.pos_encoding(features.flatten(2).transpose(1, 2))  # (B, HW, C), row-major cells
        return self.box_head(self.encoder(tokens)).transpose(1, 2).reshape(b, 4, h, w)

    def cell_boxes(self, offsets: Tensor) -> Tensor:
        """Per-cell offsets (B, 4, rows, cols) + anchors -> (B, N, 4) normalised xyxy."""
        b = offsets.shape[0]
        a = self.anchors
        if self.config.transpose_anchors:
            ax, ay = a[..., 0], a[..., 1]  # x gets the row centre (original convention)
        else:
            ax, ay = a[..., 1], a[..., 0]
        anchor = torch.stack([ax, ay, ax, ay], dim=0).to(offsets.dtype)
        return (offsets + anchor[None]).flatten(2).transpose(1, 2).reshape(b, -1, 4)

    def forward(self, images: Tensor, subject_xyxy: Tensor, **conditioning) -> GenCropOutput:
        """``images`` (B, in_channels, S, S) letterboxed and normalised; ``subject_xyxy``
        (B, 4) the subject box in input pixels."""
        features = self.cell_features(images)
        offsets = self.encode_cells(features, **conditioning)
        boxes = self.cell_boxes(offsets)
        logits = self.scorer(boxes, features, self.config.image_size)
        mask = subject_cell_mask(subject_xyxy, self.config.grid_size, self.config.stride, self.config.mask_epsilon).to(
            logits.dtype
        )
        weights = subject_softmax(logits, mask, self.config.subject_weighting)
        crop = (weights[..., None] * boxes).sum(dim=1)
        g = self.config.grid_size
        return GenCropOutput(crop=crop, cell_crops=boxes, weights=weights.view(-1, g, g), logits=logits)

    # -- persistence -------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None) -> None:
        """Write ``config.json`` + ``model.safetensors`` (atomically); ``dtype`` e.g. float16 to ship."""
        from safetensors.torch import save_file

        from ..io import atomic_path

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {}
        for k, v in self.state_dict().items():
            v = v.detach().cpu()
            if dtype is not None and v.is_floating_point():
                v = v.to(dtype)
            state[k] = v.contiguous()
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt", "gencrop_config": json.dumps(self.config.to_dict())})
        from ..io import write_json

        write_json(directory / CONFIG_NAME, self.config.to_dict())

    @classmethod
    def from_pretrained(
        cls, path: str | Path | None = None, *, epoch: int | None = None, device: str | torch.device | None = None
    ) -> "GenCrop":
        """Load a model directory (ours, or the original research code's layout), or a hub id.

        Without ``path`` the model bundled with the package is loaded.
        """
        from .checkpoints import load_model

        model = load_model(cls, path, epoch=epoch)
        if device is not None:
            model.to(device)
        return model.eval()
