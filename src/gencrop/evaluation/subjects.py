"""Subjects for benchmark photos that have none annotated: the automatic subject finder's.

A user's photo comes without a subject box, and so do benchmarks scored on all
their photos; this is how the model and the subject baseline are judged there.
"""

from __future__ import annotations

import sys

import numpy as np

from ..data.benchmarks import Benchmark
from ..io import ImageReadError, load_image

__all__ = ["attach_found_subjects"]


def attach_found_subjects(
    bench: Benchmark, finder=None, progress: bool = False, *, inside_ground_truth: bool = False, detector=None
) -> int:
    """Give photos without an annotated subject the one the subject finder picks.

    Benchmarks scored on all their photos (``--all-images``) have no subject
    boxes; a user's photo has none either, so this is how the model and the
    subject baseline are judged there. With ``inside_ground_truth`` the subject
    is the most prominent object inside the (first) ground-truth crop: how the
    training data defines a photo's subject, i.e. the subject a user who knows
    what the photo is about would give. ``detector`` (``seg(images, sizes)``)
    also keeps every detection on ``photo.detections`` (the subject-following
    protocol's second objects). Returns how many subjects were attached.
    """
    from tqdm import tqdm

    from ..subject import find_subject  # its detector loads on first use

    finder = finder or find_subject
    found = 0
    todo = [p for p in bench.photos if p.subject is None and p.view is None]
    for photo in tqdm(todo, desc="subjects", unit="photo", disable=not progress, file=sys.stderr):
        try:
            img, size = load_image(photo.path, min_side=512)
        except ImageReadError:
            continue  # the runner reports the photo as failed
        detections = None
        if detector is not None:
            detections = photo.detections = detector.seg([img], sizes=[size])[0]
        frame = photo.gts[0].clamp(*size) if inside_ground_truth and photo.gts else None
        subject = finder(img, size=size, frame=frame, detections=detections)
        photo.subject = subject.box
        if frame is None:  # found as `gencrop crop` finds it: methods may treat it as found (gencrop.subject_rule)
            photo.found = subject
        if len(subject.polygon) >= 3:
            photo.mask_polygon = np.asarray(subject.polygon, np.float32).reshape(-1, 2)
        photo.mask_source = f"{'inside the crop' if frame is not None else 'found'} ({subject.source})"
        found += 1
    return found
