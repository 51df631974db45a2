"""Does the crop follow the subject? The subject-following protocol.

IoU against an expert's crop cannot tell whether a cropper listens to the
subject it is given: on a photo with one obvious subject the same crop scores
well whatever subject is passed. This protocol asks directly. For each photo,
crop once with subject A and once with another subject B of the same photo:

* B = A mirrored left-right, kept where IoU(A, B) < 0.3 (``mirror`` pairs);
* B = another object the detector finds, separate from A (``object`` pairs).

Per pair it records:

* ``contain``: the fraction of each given subject's area inside its own crop
  (the mean over A and B);
* ``follow``: whether the crop's centre moved toward B (its distance to B's
  centre shrank);
* ``move``: 1 - IoU of the two crops.

Any method of :mod:`gencrop.evaluation.baselines` is scored the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..data.benchmarks import Benchmark
from ..geometry import Box
from ..io import ImageReadError
from .baselines import Method
from .runner import load_photo

__all__ = ["PAIR_MAX_IOU", "FollowPair", "FollowRun", "mirrored", "subject_pairs", "evaluate_following"]

# A and B count as different subjects when they overlap less than this.
PAIR_MAX_IOU = 0.3
# The second object: a confident detection covering at least this fraction of the photo.
OBJECT_MIN_SCORE = 0.4
OBJECT_MIN_AREA = 0.01


@dataclass
class FollowPair:
    name: str
    kind: str  # "mirror" | "object"
    a: Box
    b: Box
    crop_a: Box
    crop_b: Box

    @property
    def contain(self) -> float:
        return (_inside(self.a, self.crop_a) + _inside(self.b, self.crop_b)) / 2

    @property
    def follow(self) -> bool:
        bx, by = self.b.center
        return _dist(self.crop_b.center, (bx, by)) < _dist(self.crop_a.center, (bx, by))

    @property
    def move(self) -> float:
        return 1.0 - self.crop_a.iou(self.crop_b)


@dataclass
class FollowRun:
    method: str
    pairs: list[FollowPair]
    photos: int
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self, kind: str | None = None) -> dict:
        pairs = [p for p in self.pairs if kind is None or p.kind == kind]
        if not pairs:
            return {"pairs": 0, "contain": float("nan"), "follow": float("nan"), "move": float("nan")}
        return {
            "pairs": len(pairs),
            "contain": float(np.mean([p.contain for p in pairs])),
            "follow": float(np.mean([p.follow for p in pairs])),
            "move": float(np.mean([p.move for p in pairs])),
        }

    def table(self) -> dict:
        return {"all": self.summary(), "mirror": self.summary("mirror"), "object": self.summary("object")}


def _inside(subject: Box, crop: Box) -> float:
    return subject.intersection(crop) / subject.area if subject.area > 0 else 1.0


def _dist(p, q) -> float:
    return math.hypot(p[0] - q[0], p[1] - q[1])


def mirrored(box: Box, width: float) -> Box:
    return Box(width - box.x2, box.y, box.w, box.h)


def subject_pairs(subject: Box, size: tuple[int, int], detections=()) -> list[tuple[str, Box]]:
    """The B subjects of a photo whose subject is A: its mirror image, and the most prominent separate object."""
    width, height = size
    out = []
    b = mirrored(subject, width)
    if subject.iou(b) < PAIR_MAX_IOU:
        out.append(("mirror", b))
    photo_area = float(width * height)
    others = [
        d
        for d in detections
        if d.score >= OBJECT_MIN_SCORE
        and d.box.area >= OBJECT_MIN_AREA * photo_area
        and d.box.iou(subject) < PAIR_MAX_IOU
        # not a part of A, and A not a part of it
        and d.box.intersection(subject) < 0.5 * min(d.box.area, subject.area)
    ]
    if others:
        best = max(others, key=lambda d: d.score * math.sqrt(d.box.area / photo_area))
        out.append(("object", best.box.clamp(width, height)))
    return out


def evaluate_following(
    bench: Benchmark, method: Method, *, limit: int | None = None, progress: bool = True
) -> FollowRun:
    """Crop every photo with its subject A and with each B of :func:`subject_pairs`; score the pairs.

    Photos need a subject (annotated, or attached by the subject finder) and,
    for object pairs, ``photo.detections``. Subjects go in as boxes: a mask
    would only describe A.
    """
    from tqdm import tqdm

    photos = [p for p in (bench.photos[:limit] if limit else bench.photos) if p.subject is not None]
    pairs: list[FollowPair] = []
    failed: list[tuple[str, str]] = []
    for photo in tqdm(photos, desc=f"follow {method.name}", unit="photo", disable=not progress, dynamic_ncols=True):
        try:
            image, size = load_photo(photo, method.needs_pixels)
            a = photo.subject.clamp(*size)
            crop_a = method.predict(image, size, a, None).box.clamp(*size)
            for kind, b in subject_pairs(a, size, getattr(photo, "detections", None) or ()):
                crop_b = method.predict(image, size, b, None).box.clamp(*size)
                pairs.append(FollowPair(photo.name, kind, a, b, crop_a, crop_b))
        except (ImageReadError, OSError, ValueError) as e:
            failed.append((photo.name, str(e).splitlines()[0] if str(e) else type(e).__name__))
    return FollowRun(method.name, pairs, len(photos), failed)
