"""The offline COCO segmenter now lives with the subject finders (:mod:`gencrop.subjects.yolov7`); this name stays."""

import sys

from ..subjects import yolov7 as _module

sys.modules[__name__] = _module
