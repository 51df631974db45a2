"""gencrop: subject-aware photo cropping learned from outpainted professional photos."""

__version__ = "0.1.0"

from .geometry import Box  # noqa: E402

__all__ = ["Box", "Cropper", "GenCrop", "GenCropConfig", "__version__"]


def __getattr__(name):
    # Lazy: importing torch costs seconds, and `gencrop --help` should not pay it.
    if name == "Cropper":
        from .inference import Cropper

        return Cropper
    if name in ("GenCrop", "GenCropConfig"):
        from .modeling import gencrop as _m

        return getattr(_m, name)
    raise AttributeError(f"module 'gencrop' has no attribute {name!r}")
