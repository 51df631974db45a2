"""The detection record now lives with the subject finders (:mod:`gencrop.subjects.detection`); this name stays."""

from ..subjects.detection import Detection

__all__ = ["Detection"]
