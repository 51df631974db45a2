"""What the model worker does with a batch of crop requests, through the Cropper's public API.

Photos arrive prepared (decoded, letterboxed, subject given or found: see
:mod:`gencrop.serve.uploads`), so the model thread only runs the network and
fits the crops. Requests that ask for the same single shape run together in
one ``Cropper.crop_many`` call (one network pass for all of them); a request
for several shapes runs alone through ``Cropper.crop_shapes`` (one network
pass, one result per shape). When a batch fails because of one request, its
requests are run one by one so that only the bad one gets the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..inference import PreparedPhoto


@dataclass
class CropJob:
    """One request's work: its photo, prepared with its subject, and its shapes."""

    photo: PreparedPhoto
    shapes: tuple  # gencrop.shapes.Shape objects; (None,) = the model's free crop
    keep_subject: bool | None = None

    def batch_key(self):
        """Jobs with equal keys can share one ``crop_many`` call."""
        if len(self.shapes) != 1:
            return None
        return (_shape_key(self.shapes[0]), self.keep_subject)


def _shape_key(shape) -> tuple:
    if shape is None:
        return (None, None, None)
    return (shape.aspect, shape.size, shape.area)


def _shape_kwargs(shape) -> dict:
    if shape is None or (shape.aspect is None and shape.size is None and shape.area is None):
        return {}
    return {"aspect": shape.aspect, "size": shape.size, "area": shape.area}


def _keep_kwargs(job: CropJob) -> dict:
    return {} if job.keep_subject is None else {"keep_subject": job.keep_subject}


class CropWorker:
    """Runs batches of :class:`CropJob` on one Cropper; used as a ``BatchQueue`` process."""

    def __init__(self, cropper):
        self.cropper = cropper

    def __call__(self, jobs: Sequence[CropJob]) -> list:
        results: list = [None] * len(jobs)
        groups: dict = {}
        for i, job in enumerate(jobs):
            key = job.batch_key()
            if key is None:
                results[i] = self._guarded(self._one, job)
            else:
                groups.setdefault(key, []).append(i)
        for indices in groups.values():
            group = [jobs[i] for i in indices]
            try:
                crops = self._together(group)
            except Exception:  # noqa: BLE001 - find out which request it was
                crops = [self._guarded(self._one, job) for job in group]
            for i, crop in zip(indices, crops):
                results[i] = crop
        return results

    @staticmethod
    def _guarded(fn, job):
        try:
            return fn(job)
        except Exception as e:  # noqa: BLE001 - this request's own error
            return e

    def _together(self, group: list[CropJob]) -> list[list]:
        """Same single shape: one crop_many call; a list of one result per job."""
        first = group[0]
        out = self.cropper.crop_many(
            [j.photo for j in group],
            batch_size=len(group),
            **_shape_kwargs(first.shapes[0]),
            **_keep_kwargs(first),
        )
        return [[r] for r in out]

    def _one(self, job: CropJob) -> list:
        if len(job.shapes) == 1:
            return self._together([job])[0]
        return list(self.cropper.crop_shapes(job.photo, list(job.shapes), **_keep_kwargs(job)))
