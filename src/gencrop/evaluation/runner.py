"""Run a cropping method over a benchmark and score it with the published protocol.

For every photo: predict, clamp the prediction to the photo exactly as the
published evaluation did (``clamp_prediction`` against the whole photo), then
score it against the ground truths with ``score_against_ground_truths``.
The summary is ``summarize`` of the per-photo values: mean IoU, mean
boundary displacement / 4 (BDE) and the fraction with IoU >= 0.75. One photo
that cannot be read is recorded as failed and does not stop the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from ..data.benchmarks import Benchmark, BenchmarkPhoto
from ..geometry import Box, clamp_prediction, score_against_ground_truths, summarize
from ..io import ImageReadError, image_size, load_image
from ..shapes import Shape
from .baselines import Method, Prediction

__all__ = ["PhotoResult", "EvalRun", "evaluate", "load_photo"]


@dataclass
class PhotoResult:
    index: int
    name: str
    width: int = 0
    height: int = 0
    num_gts: int = 0
    gt_index: int = -1
    gt: Box | None = None  # the ground truth the score is against
    pred: Box | None = None  # clamped: what is scored
    raw: Box | None = None  # as the method returned it
    subject: Box | None = None
    subject_found: object | None = None  # the finder's Subject (class, score, source), when it was found
    iou: float = float("nan")
    disp: float = float("nan")  # boundary displacement (BDE = disp / 4)
    error: str = ""
    thumb: str = ""  # report-relative path of the picture

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class EvalRun:
    benchmark: str
    description: str
    method: str
    results: list[PhotoResult]
    missing: list[str] = field(default_factory=list)
    seconds: float = 0.0
    info: dict = field(default_factory=dict)  # anything else worth recording (mask source, ...)

    @property
    def ok(self) -> list[PhotoResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[PhotoResult]:
        return [r for r in self.results if not r.ok]

    def summary(self) -> dict:
        ok = self.ok
        return summarize([r.iou for r in ok], [r.disp for r in ok])


def load_photo(photo: BenchmarkPhoto, decode: bool = True):
    """``(image or None, (W, H))`` of a benchmark photo; a view is cut out of its canvas."""
    if not decode and photo.view is None:
        return None, image_size(photo.path)
    img, size = load_image(photo.path)
    if photo.view is not None:
        v = photo.view.rounded()
        img = img.crop((int(v.x), int(v.y), int(v.x2), int(v.y2)))
        size = img.size
        if not decode:
            img = None
    return img, size


def aspect_of(box: Box) -> Shape:
    """The shape request "this box's aspect ratio" (as the nearest ratio with terms up to 100)."""
    return Shape.parse(repr(box.w / box.h))


def score_photo(pred: Box, photo: BenchmarkPhoto, width: int, height: int) -> tuple[Box, float, float, int]:
    """The protocol: clamp to the photo, then score against every ground truth."""
    clamped = clamp_prediction(pred, Box(0, 0, width, height))
    iou, disp, k = score_against_ground_truths(clamped, photo.gts, width, height)
    return clamped, iou, disp, k


def evaluate(
    bench: Benchmark,
    method: Method,
    *,
    limit: int | None = None,
    progress: bool = True,
    on_photo: Callable[[PhotoResult, BenchmarkPhoto, object, Prediction | None], None] | None = None,
    need_pixels: bool = False,
    ground_truth_aspect: bool = False,
) -> EvalRun:
    """Score ``method`` on every photo of ``bench`` (the first ``limit`` with ``limit``).

    ``on_photo(result, photo, image, prediction)`` is called after each photo
    (the report draws its pictures there); ``need_pixels`` makes the runner
    decode photos even for methods that do not look at them. With
    ``ground_truth_aspect`` the method is asked for a crop of the (first)
    ground truth's aspect ratio: the shape protocol.
    """
    from tqdm import tqdm

    photos = bench.photos[:limit] if limit else bench.photos
    decode = need_pixels or method.needs_pixels
    results = []
    t0 = time.perf_counter()
    for i, photo in enumerate(
        tqdm(photos, desc=f"eval {bench.name} {method.name}", unit="photo", disable=not progress, dynamic_ncols=True)
    ):
        r = PhotoResult(i, photo.name, num_gts=len(photo.gts), subject=photo.subject, subject_found=photo.found)
        # a method that applies the rule for found subjects gets the finder's Subject, the others its box
        found = photo.found if getattr(method, "takes_found_subject", False) else None
        subject = found if found is not None else photo.subject
        pred = image = None
        try:
            image, (W, H) = load_photo(photo, decode)
            r.width, r.height = W, H
            mask = photo.subject_mask(W, H) if method.uses_mask else None
            if ground_truth_aspect:
                pred = method.predict(image, (W, H), subject, mask, aspect_of(photo.gts[0]))
            else:  # methods written before shape requests take four arguments
                pred = method.predict(image, (W, H), subject, mask)
            r.raw = pred.box
            if pred.subject is not None:
                r.subject = pred.subject
            r.pred, r.iou, r.disp, r.gt_index = score_photo(pred.box, photo, W, H)
            r.gt = photo.gts[r.gt_index]
        except (ImageReadError, OSError, ValueError) as e:
            r.error = str(e).splitlines()[0] if str(e) else type(e).__name__
        results.append(r)
        if on_photo is not None:
            on_photo(r, photo, image, pred)
    run = EvalRun(bench.name, bench.description, method.name, results, list(bench.missing), time.perf_counter() - t0)
    return run
