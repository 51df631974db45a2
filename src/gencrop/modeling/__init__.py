"""The GenCrop network and its parts."""

from .gencrop import GenCrop, GenCropConfig, GenCropOutput

__all__ = ["GenCrop", "GenCropConfig", "GenCropOutput"]
