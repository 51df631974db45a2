"""What a crop gives back: the crop in photo pixels, how it was made, and the cropped photo itself.

The network sees a reduced decode of the photo; the cropped photo is cut from
the full-resolution one (:class:`FullPhoto`), decoded when it is first asked
for, or in a thread beside the network when the caller said it will cut
(``Cropper.crop(..., cut=True)``). Every crop of one photo shares that decode.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .geometry import Box
from .io import load_image
from .shapes import Shape

__all__ = ["CropResult", "FullPhoto"]


class FullPhoto:
    """The full-resolution upright photo that crops are cut from, decoded once.

    ``source``: what to decode when first asked (a path, the bytes of an upload, a PIL image or
    an array); ``pending``: a decode already running (a future of ``load_image``'s answer);
    ``image``: the decode itself.
    """

    def __init__(self, source=None, *, pending: Future | None = None, image: Image.Image | None = None):
        if source is None and pending is None and image is None:
            raise ValueError("a full photo needs a source, a pending decode or an image")
        self._source, self._pending, self._image = source, pending, image
        self._lock = threading.Lock()

    def get(self) -> Image.Image:
        with self._lock:
            if self._image is None:
                if self._pending is not None:
                    self._image = self._pending.result()[0]
                else:
                    self._image = load_image(self._source)[0]
                self._source = self._pending = None
            return self._image

    def discard(self) -> None:
        """Wait for a decode still running and drop it, its error too (the photo failed elsewhere)."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            with contextlib.suppress(Exception):
                pending.result()


@dataclass
class CropResult:
    box: Box  # the crop: whole photo pixels, inside the photo (what is printed and cut)
    raw_box: Box  # the network's crop mapped to photo pixels, before clamping, shape and subject rules
    subject: Box  # the subject used, photo pixels
    heatmap: np.ndarray  # (rows, cols) cell weights of the weighted average (sum to 1)
    size: tuple[int, int]  # (width, height) of the upright photo
    subject_source: str = "given"  # "given", "mask", or what found it ("detection", "segmentation", "face", "saliency")
    shape: Shape | None = None  # the requested shape (None: free)
    subject_kept: bool = False  # the crop was moved/grown to contain the subject
    subject_class: str | None = None  # a found subject: what the finder called it ("person", "salient", ...)
    subject_score: float | None = None  # a found subject: the finder's confidence in [0, 1]
    full: FullPhoto | None = field(default=None, repr=False, compare=False)  # what :attr:`image` is cut from

    def __repr__(self) -> str:
        """One line: ``print(result)`` shows the crop, not the heatmap's numbers."""
        shape = "free" if self.shape is None else self.shape.name
        heatmap = "x".join(str(n) for n in np.shape(self.heatmap))
        return (
            f"CropResult(box={self.box!r}, subject={self.subject!r}, subject_source={self.subject_source!r}, "
            f"shape={shape!r}, size={tuple(self.size)!r}, subject_kept={self.subject_kept}, heatmap=<{heatmap}>)"
        )

    def to_json(self, photo: str | None = None) -> dict:
        d = {
            "crop": [int(v) for v in self.box.xywh],
            "subject": [round(v, 2) for v in self.subject.xywh],
            "size": list(self.size),
            "subject_source": self.subject_source,
            "subject_kept": self.subject_kept,
        }
        if self.subject_class is not None:
            d["subject_class"] = self.subject_class
        if self.subject_score is not None:
            d["subject_score"] = round(self.subject_score, 3)
        if self.shape is not None:
            d["shape"] = self.shape.name
        return {"photo": photo, **d} if photo is not None else d

    @property
    def photo(self) -> Image.Image:
        """The whole photo at full resolution, upright (decoded on first use, then kept)."""
        if self.full is None:
            raise ValueError("this crop has no full-resolution photo to cut from: pass one to cut()")
        return self.full.get()

    @property
    def image(self) -> Image.Image:
        """The cropped photo at full resolution (what ``gencrop crop`` writes): :meth:`cut` of :attr:`photo`."""
        return self.cut()

    def cut(self, image: Image.Image | None = None) -> Image.Image:
        """The crop cut out of the upright photo ``image`` (default: :attr:`photo`); resized to the
        requested output size when the shape has one."""
        image = self.photo if image is None else image
        if image.size != tuple(self.size):
            raise ValueError(
                f"image is {image.size[0]}x{image.size[1]}, the crop is for a {self.size[0]}x{self.size[1]} photo"
            )
        b = self.box
        out = image.crop((int(b.x), int(b.y), int(b.x2), int(b.y2)))
        if self.shape is not None and self.shape.size is not None and out.size != self.shape.size:
            out = out.resize(self.shape.size, Image.LANCZOS)
        return out
