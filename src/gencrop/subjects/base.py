"""What every subject finder returns, and the one place where its geometry is computed.

A finder looks at ``image``, which may be a reduced decode of a photo whose full
``size`` is given, possibly restricted to a ``frame`` (photo pixels). Its model
sees a small *view* of that region; the region it finds there (a map of any
resolution over the view) becomes a :class:`Subject` through :class:`View`:
the box and polygon in photo pixels, the mask with exactly the shape of
``image``. Every conversion between the three spaces goes through
:class:`View`, so they cannot disagree by a pixel whatever the photo's size.
"""

from __future__ import annotations

import math
import sys
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from ..geometry import Box
from .detection import Detection

__all__ = ["Subject", "SubjectNotFound", "View", "onnx_session", "model_path", "warn_once"]


class SubjectNotFound(RuntimeError):
    """No subject finder can run here (or none could find a subject)."""


@dataclass
class Subject:
    """The chosen subject: box in photo pixels, mask of the image as passed, and what found it.

    ``score`` is the finder's confidence in [0, 1] (detector or face score, or the
    mean saliency inside the region); ``cls`` says what was found: a COCO class
    name such as ``"person"``, ``"face"``, or ``"salient"``.
    """

    box: Box
    mask: np.ndarray | None
    source: str  # "detection" | "face" | "saliency"
    score: float = 1.0
    cls: str = "salient"
    polygon: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))  # photo pixels

    def to_detection(self) -> Detection:
        return Detection(box=self.box, score=self.score, cls=self.cls, polygon=self.polygon)


@dataclass(frozen=True)
class View:
    """The part of ``image`` a finder's model looks at: whole image pixels ``[x1, x2) x [y1, y2)``.

    ``image_size`` is the decode's (width, height), ``photo_size`` the full photo's.
    """

    x1: int
    y1: int
    x2: int
    y2: int
    image_size: tuple[int, int]
    photo_size: tuple[int, int]

    @classmethod
    def of(cls, image: Image.Image, size: tuple[int, int] | None = None, frame: Box | None = None) -> View:
        """The view of ``frame`` (photo pixels; default the whole photo), at least one pixel, inside the image."""
        iw, ih = image.size
        pw, ph = (int(v) for v in (size or image.size))
        if min(iw, ih, pw, ph) <= 0:
            raise ValueError(f"the photo has no pixels ({iw}x{ih} decode of a {pw}x{ph} photo)")
        if frame is None:
            return cls(0, 0, iw, ih, (iw, ih), (pw, ph))
        frame = frame.clamp(pw, ph)
        if frame.is_empty():
            raise ValueError(f"the frame {frame.xywh} is empty inside the {pw}x{ph} photo")
        sx, sy = iw / pw, ih / ph
        x1 = min(iw - 1, max(0, math.floor(frame.x * sx)))
        y1 = min(ih - 1, max(0, math.floor(frame.y * sy)))
        x2 = max(x1 + 1, min(iw, math.ceil(frame.x2 * sx)))
        y2 = max(y1 + 1, min(ih, math.ceil(frame.y2 * sy)))
        return cls(x1, y1, x2, y2, (iw, ih), (pw, ph))

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        return self.y2 - self.y1

    @property
    def is_whole(self) -> bool:
        return (self.x1, self.y1, self.x2, self.y2) == (0, 0, *self.image_size)

    def crop(self, image: Image.Image) -> Image.Image:
        return image if self.is_whole else image.crop((self.x1, self.y1, self.x2, self.y2))

    def to_photo(self, u1: float, v1: float, u2: float, v2: float) -> Box:
        """Fractions of the view (0-1, x then y) -> a box in photo pixels, inside the photo."""
        (iw, ih), (pw, ph) = self.image_size, self.photo_size
        sx, sy = pw / iw, ph / ih
        x1 = (self.x1 + u1 * self.width) * sx
        y1 = (self.y1 + v1 * self.height) * sy
        x2 = (self.x1 + u2 * self.width) * sx
        y2 = (self.y1 + v2 * self.height) * sy
        return Box.from_xyxy(x1, y1, x2, y2).clamp(pw, ph)

    def photo_to_image(self, box: Box) -> tuple[int, int, int, int]:
        """A photo-pixel box -> whole image pixels (x1, y1, x2, y2), at least one pixel, inside the image."""
        (iw, ih), (pw, ph) = self.image_size, self.photo_size
        sx, sy = iw / pw, ih / ph
        x1 = min(iw - 1, max(0, math.floor(box.x * sx)))
        y1 = min(ih - 1, max(0, math.floor(box.y * sy)))
        return x1, y1, max(x1 + 1, min(iw, math.ceil(box.x2 * sx))), max(y1 + 1, min(ih, math.ceil(box.y2 * sy)))

    def subject(self, region: np.ndarray, *, source: str, score: float, cls: str) -> Subject:
        """A bool map over the view (any resolution, not empty) -> the subject, in every space it is needed."""
        region = np.asarray(region, bool)
        rh, rw = region.shape
        ys, xs = np.nonzero(region)
        if not len(xs):
            raise ValueError("the region is empty")
        box = self.to_photo(xs.min() / rw, ys.min() / rh, (xs.max() + 1) / rw, (ys.max() + 1) / rh)
        mask = np.zeros((self.image_size[1], self.image_size[0]), bool)
        view_mask = Image.fromarray(region).resize((self.width, self.height), Image.NEAREST)
        mask[self.y1 : self.y2, self.x1 : self.x2] = np.asarray(view_mask, bool)
        if not mask.any():  # a sliver lost when the view is smaller than the map: its centre stands in
            cy = self.y1 + min(self.height - 1, int(ys.mean() * self.height / rh))
            cx = self.x1 + min(self.width - 1, int(xs.mean() * self.width / rw))
            mask[cy, cx] = True
        return Subject(box, mask, source, float(score), cls, self._outline(region))

    def box_subject(
        self, u1: float, v1: float, u2: float, v2: float, *, source: str, score: float, cls: str
    ) -> Subject:
        """A box given in fractions of the view -> the subject (its mask is the box's pixels)."""
        box = self.to_photo(u1, v1, u2, v2)
        x1, y1, x2, y2 = self.photo_to_image(box)
        mask = np.zeros((self.image_size[1], self.image_size[0]), bool)
        mask[y1:y2, x1:x2] = True
        bx1, by1, bx2, by2 = box.xyxy
        polygon = np.array([[bx1, by1], [bx2, by1], [bx2, by2], [bx1, by2]], np.float32)
        return Subject(box, mask, source, float(score), cls, polygon)

    def _outline(self, region: np.ndarray) -> np.ndarray:
        """The region's row-wise outline (left ends down, right ends up), photo pixels: its polygon.

        Exact for regions without holes or concave sides; always inside the region's box.
        """
        rh, rw = region.shape
        rows = np.flatnonzero(region.any(1))
        left = region[rows].argmax(1)
        right = rw - region[rows, ::-1].argmax(1)
        u = np.concatenate([left, right[::-1]]) / rw
        v = np.concatenate([rows, rows[::-1] + 1]) / rh
        (iw, ih), (pw, ph) = self.image_size, self.photo_size
        px = (self.x1 + u * self.width) * (pw / iw)
        py = (self.y1 + v * self.height) * (ph / ih)
        return np.clip(np.stack([px, py], 1), 0, [pw, ph]).astype(np.float32)


def model_path(name: str) -> Path:
    """A model file shipped with gencrop (``gencrop/subjects/models/NAME``)."""
    return Path(str(resources.files(__package__) / "models" / name))


_sessions: dict[str, object] = {}
_sessions_lock = threading.Lock()


def onnx_session(name: str):
    """The process-wide onnxruntime session of a shipped model (loaded once; ``run`` is thread-safe)."""
    with _sessions_lock:
        if name not in _sessions:
            path = model_path(name)
            if not path.is_file():
                raise SubjectNotFound(
                    f"{path}: the subject finder's model is missing from this install; reinstall gencrop"
                )
            import onnxruntime as ort

            from ..runtime.session_cache import cached_session

            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            opts.intra_op_num_threads = 1  # small models: one thread each, several photos at once
            opts.inter_op_num_threads = 1
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            _sessions[name] = cached_session(path, opts)
        return _sessions[name]


_warned: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """One line on stderr per process: a finder that cannot run is reported, never silently skipped."""
    if key not in _warned:
        _warned.add(key)
        print(f"gencrop: warning: {message}", file=sys.stderr)
