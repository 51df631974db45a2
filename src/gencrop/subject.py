"""The subject finders, under the name code and docs have always imported them by (:mod:`gencrop.subjects`)."""

from . import subjects as _subjects
from .subjects import *  # noqa: F403 - the same names, whatever gencrop.subjects exports

__all__ = list(_subjects.__all__)
