"""A network stub for contract tests: its answer is known, so what the Cropper does with it can be
worked out by hand."""

from __future__ import annotations

import numpy as np

from gencrop.runtime import NetworkInfo

DIM = 64


class FixedNetwork:
    """Always proposes ``crop`` (normalised xyxy of the input); records what it was given."""

    runtime = "stub"

    def __init__(self, crop, in_channels=3, subject_pull=0.0, variant="gencrop"):
        self.crop = np.asarray(crop, np.float32)
        self.info = NetworkInfo(DIM, in_channels, variant, subject_pull=subject_pull)
        self.calls: list[tuple] = []

    def __call__(self, images, subjects, shapes=None):
        self.calls.append((images, subjects, shapes))
        n = len(images)
        return np.tile(self.crop, (n, 1)), np.full((n, 4, 4), 1 / 16, np.float32)


class SubjectEchoNetwork(FixedNetwork):
    """Proposes each photo's own subject box: every photo of a batch gets a different answer."""

    def __call__(self, images, subjects, shapes=None):
        self.calls.append((images, subjects, shapes))
        n = len(images)
        return np.asarray(subjects, np.float32) / DIM, np.full((n, 4, 4), 1 / 16, np.float32)
