"""The detection record shared by every segmenter backend and by the subject finder."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..geometry import Box


@dataclass
class Detection:
    """One instance: its box in image pixels, confidence, COCO class name and outline polygon."""

    box: Box
    score: float
    cls: str
    polygon: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))  # N x 2, pixels
