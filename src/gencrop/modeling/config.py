"""What a GenCrop network is built from: its configuration, saved as ``config.json``.

Below both the network (:mod:`.gencrop`) and its loading (:mod:`.checkpoints`), so
that loading a model directory needs no part of the network to read its config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

__all__ = ["GenCropConfig", "LEGACY_DEFAULTS", "MASK_CHANNEL_INITS"]


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
    def from_dict(cls, d: dict) -> GenCropConfig:
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
