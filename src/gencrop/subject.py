"""The subject finders, under the name code and docs have always imported them by (:mod:`gencrop.subjects`)."""

from .subjects import (
    DEFAULT_FINDER,
    DETECTOR_HINT,
    FINDERS,
    INSTALL_HINT,
    Detection,
    FaceFinder,
    SaliencyFinder,
    Subject,
    SubjectFinder,
    SubjectNotFound,
    default_finder,
    detector_missing,
    find_subject,
    get_finder,
    prominence,
    resolve_finder,
)

__all__ = [
    "Subject",
    "SubjectNotFound",
    "Detection",
    "SubjectFinder",
    "FaceFinder",
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
