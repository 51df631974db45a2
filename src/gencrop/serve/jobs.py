"""What the model worker does with a batch of crop requests, through the Cropper's public API.

Photos arrive prepared (decoded, letterboxed, subject given or found: see
:mod:`gencrop.serve.uploads`), so the model thread only runs the network and
fits the crops. Requests that ask for the same shapes (one or several) run
together in one ``Cropper.crop`` call on their prepared photos: one network pass for all
their photos. When a group fails because of one request, its requests are run
one by one so that only the bad one gets the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..inference import PreparedPhoto


@dataclass
class CropJob:
    """One request's work: its photo, prepared with its subject, and its shapes."""

    photo: PreparedPhoto
    shapes: tuple  # gencrop.shapes.Shape objects (hashable: equal shapes batch together)
    keep_subject: bool | None = None

    def batch_key(self) -> tuple:
        """Jobs with equal keys share one network pass."""
        return (self.shapes, self.keep_subject)


class CropWorker:
    """Runs batches of :class:`CropJob` on one Cropper; used as a ``BatchQueue`` process."""

    def __init__(self, cropper):
        self.cropper = cropper

    def __call__(self, jobs: Sequence[CropJob]) -> list:
        results: list = [None] * len(jobs)
        groups: dict = {}
        for i, job in enumerate(jobs):
            groups.setdefault(job.batch_key(), []).append(i)
        for indices in groups.values():
            group = [jobs[i] for i in indices]
            try:
                crops = self._together(group)
            except Exception:  # noqa: BLE001 - find out which request it was
                crops = [self._alone(job) for job in group]
            for i, crop in zip(indices, crops):
                results[i] = crop
        return results

    def _together(self, group: list[CropJob]) -> list[list]:
        """Jobs with the same shapes: one call; a list of crops (one per shape) per job."""
        first = group[0]
        keep = {} if first.keep_subject is None else {"keep_subject": first.keep_subject}
        return list(
            self.cropper.crop([j.photo for j in group], shapes=list(first.shapes), batch_size=len(group), **keep)
        )

    def _alone(self, job: CropJob):
        try:
            return self._together([job])[0]
        except Exception as e:  # noqa: BLE001 - this request's own error
            return e
