"""Finding the main subject of a photo when the user does not give one.

One module per finder, each with ``find(image, size=None, cls="any",
frame=None, detections=None) -> Subject`` and ``load()``:

* ``people`` (:mod:`.people`): the figures of YuNet's faces (selfie
  segmentation), else the salient region;
* ``faces`` (:mod:`.faces`): YuNet faces, else the salient region;
* ``saliency`` (:mod:`.saliency`): the salient region of U²-Netp;
* ``detector`` (:mod:`.detector`): the most prominent COCO instance
  (YOLOv5s-seg, needs the ``subject`` extra: torch), else the salient region.

The first three ship with gencrop (ONNX models run by onnxruntime with numpy
and Pillow: no torch, no OpenCV) and work in a plain install; ``auto`` is the
one chosen by measurement (see the model card's subject-finder table).

Coordinates: ``image`` may be a reduced decode of a larger photo whose full
``size`` is given; the returned box and polygon are in full-photo pixels, the
mask has the shape of ``image``.
"""

from __future__ import annotations

import threading

from PIL import Image

from ..geometry import Box
from .base import Subject, SubjectNotFound
from .detection import Detection
from .detector import DETECTOR_HINT, SubjectFinder, detector_missing, prominence
from .faces import FaceFinder
from .people import PeopleFinder
from .saliency import SaliencyFinder

__all__ = [
    "Subject",
    "SubjectNotFound",
    "Detection",
    "SubjectFinder",
    "FaceFinder",
    "PeopleFinder",
    "SaliencyFinder",
    "FINDERS",
    "DEFAULT_FINDER",
    "get_finder",
    "resolve_finder",
    "default_finder",
    "find_subject",
    "prominence",
    "detector_missing",
    "DETECTOR_HINT",
    "INSTALL_HINT",
]

FINDERS = {"people": PeopleFinder, "faces": FaceFinder, "saliency": SaliencyFinder, "detector": SubjectFinder}
# What "auto" means: chosen on validation photos by crop quality and time (docs/model-card.md).
DEFAULT_FINDER = "people"
INSTALL_HINT = "give the subject yourself (--subject x,y,w,h), or reinstall gencrop: its subject finder is missing"

_finders: dict[str, object] = {}
_lock = threading.Lock()


def get_finder(name: str = "auto"):
    """The process-wide finder of that name (``auto``, ``people``, ``faces``, ``saliency``, ``detector``).

    Its models load once."""
    key = DEFAULT_FINDER if name == "auto" else name
    if key not in FINDERS:
        raise ValueError(f"unknown subject finder {name!r}; choose one of auto, {', '.join(FINDERS)}")
    with _lock:
        if key not in _finders:
            _finders[key] = FINDERS[key]()
        return _finders[key]


def resolve_finder(finder):
    """A finder from what a user passes: a name, an object with ``find``, or ``None`` (``auto``)."""
    if finder is None or isinstance(finder, str):
        return get_finder(finder or "auto")
    if not hasattr(finder, "find"):
        raise TypeError(f"a subject finder is a name or has find(image, size=...); got {type(finder).__name__}")
    return finder


def default_finder():
    """The finder a photo without a subject gets (``auto``)."""
    return get_finder("auto")


def find_subject(
    image: Image.Image,
    size: tuple[int, int] | None = None,
    cls: str = "any",
    detector=None,
    frame: Box | None = None,
    detections: list | None = None,
) -> Subject:
    """The main subject of a photo (inside ``frame``), by the default finder.

    ``detector`` (anything with ``seg(images, sizes)``) or ``detections`` (a
    segmentation already made, photo pixels) make the most prominent
    detection the subject, as the ``detector`` finder does.
    """
    if detections is None and detector is not None:
        from ..io import to_rgb

        detections = detector.seg([to_rgb(image)], sizes=[tuple(size or image.size)])[0]
    if detections is not None:
        return get_finder("detector").find(image, size, cls, frame, detections=detections)
    return default_finder().find(image, size, cls, frame)
