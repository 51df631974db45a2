"""People: the figures of the photo's faces, by MediaPipe's selfie segmentation (Apache-2.0) on onnxruntime.

A face is not its person: a crop that keeps a face's box still cuts the body below it. The
segmentation model marks the pixels that belong to a person, so the region around a face is the
person's whole figure. On its own it is no person detector: on photos without people it marks
birds, statues and other foreground objects as readily (measured in the model card), so a figure
counts only where YuNet found a face in it. The model ships with gencrop
(``models/selfie_segmentation.onnx``, converted from the TFLite model in the ``mediapipe`` 0.10.14
wheel by ``tools/finder_models.py``); it takes the view stretched to 256 x 256 RGB in [0, 1], as
MediaPipe feeds it, and gives a person probability per pixel at the same size.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..geometry import Box
from ..io import to_rgb
from .base import Subject, View, onnx_session
from .faces import FaceFinder
from .regions import label_components

__all__ = ["PeopleFinder", "person_probability", "figures_of", "MODEL_FILE", "INPUT_SIZE"]

MODEL_FILE = "selfie_segmentation.onnx"
INPUT_SIZE = 256  # the model's fixed, square input


def person_probability(image: Image.Image) -> np.ndarray:
    """Per-pixel person probability of an RGB image: INPUT_SIZE x INPUT_SIZE float32 in [0, 1]."""
    size = (INPUT_SIZE, INPUT_SIZE)
    small = image.resize(size, Image.BILINEAR, reducing_gap=3.0) if image.size != size else image
    x = np.asarray(small, np.float32)[None] / 255.0
    session = onnx_session(MODEL_FILE)
    return session.run(None, {session.get_inputs()[0].name: x})[0][0, :, :, 0]


def _box_pixels(box: np.ndarray, h: int, w: int) -> tuple[int, int, int, int]:
    """A box in fractions (x1, y1, x2, y2) -> map pixels, at least one, inside the map."""
    x1, y1 = min(w - 1, max(0, int(box[0] * w))), min(h - 1, max(0, int(box[1] * h)))
    return x1, y1, max(x1 + 1, min(w, int(np.ceil(box[2] * w)))), max(y1 + 1, min(h, int(np.ceil(box[3] * h))))


def figures_of(people: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """The regions of a person map that overlap any of the faces (boxes as fractions of the map)."""
    h, w = people.shape
    labels = label_components(people)
    hit: set[int] = set()
    for face in faces:
        x1, y1, x2, y2 = _box_pixels(face, h, w)
        hit |= set(np.unique(labels[y1:y2, x1:x2]).tolist())
    return np.isin(labels, sorted(hit - {0}))


class PeopleFinder:
    """The people whose faces the photo shows clearly, their whole figures; else its salient region.

    The faces are :class:`FaceFinder`'s (the largest face and those at least ``group`` of its area);
    each figure is the region of person probability above ``threshold`` that overlaps one of them,
    and the subject is the figures with the faces. Where the segmentation finds no figure, the faces
    alone are the subject (class ``"face"``), as with :class:`FaceFinder`. Photos without a face go to the
    face finder's fallback (the salient region).
    """

    name = "people"

    def __init__(self, threshold: float = 0.5, faces: FaceFinder | None = None):
        self.threshold = threshold
        self.faces = faces or FaceFinder()

    def load(self) -> None:
        onnx_session(MODEL_FILE)
        self.faces.load()

    def find(
        self, image: Image.Image, size=None, cls: str = "any", frame: Box | None = None, detections=None
    ) -> Subject:
        image = to_rgb(image)
        view = View.of(image, size, frame)
        region = view.crop(image)
        found = self.faces.face_group(region) if cls in ("any", "face", "person") else None
        if found is None:
            return self.faces.fallback.find(image, size, cls, frame)
        faces, score = found
        figures = figures_of(person_probability(region) > self.threshold, faces)
        if not figures.any():
            (u1, v1), (u2, v2) = faces[:, :2].min(0), faces[:, 2:].max(0)
            return view.box_subject(u1, v1, u2, v2, source="face", score=score, cls="face")
        h, w = figures.shape
        for face in faces:  # a face the segmentation left out still belongs to the subject
            x1, y1, x2, y2 = _box_pixels(face, h, w)
            figures[y1:y2, x1:x2] = True
        return view.subject(figures, source="segmentation", score=score, cls="person")
