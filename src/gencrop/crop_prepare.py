"""Making a photo ready for a network: decoded, its subject given or found, letterboxed; no network pass.

Preparing is the part of cropping that needs no model, so a server prepares
photos in its request threads while the model runs earlier ones
(:meth:`gencrop.inference.Cropper.prepare`). The full-resolution photo that
crops are cut from (:class:`~gencrop.crop_result.FullPhoto`) is set up here
too: decoded in a thread beside the network when the caller will cut, or
later, on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import BytesIO

import numpy as np
from PIL import Image

from .crop_result import FullPhoto
from .data.letterbox import Letterbox, box_mask, letterbox_image, letterbox_mask
from .geometry import Box
from .io import drafts_jpeg, load_image

__all__ = ["PreparedPhoto", "SubjectRequired", "open_photo", "prepare_photo", "check_prepared"]


class SubjectRequired(ValueError):
    """No subject was given and no automatic subject finder is available."""


@dataclass
class PreparedPhoto:
    """A photo made ready for one Cropper's network (:meth:`gencrop.inference.Cropper.prepare`):
    decoded, reduced, letterboxed, its subject given or found. ``Cropper.crop`` takes it in place
    of a photo."""

    array: np.ndarray  # (C, dim, dim) network input
    subject_input: Box  # subject in input pixels
    subject: Box  # subject in photo pixels
    letterbox: Letterbox
    source: str  # "given", "mask", or what found the subject
    image: Image.Image  # the decode the input was made from (reduced for large photos)
    subject_class: str | None = None  # a found subject's class (None: given)
    subject_score: float | None = None  # a found subject's confidence (None: given)
    full: FullPhoto | None = None  # the full-resolution photo crops are cut from

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the upright photo: the pixels crops are given in."""
        return (self.letterbox.width, self.letterbox.height)

    @property
    def photo(self) -> Image.Image:
        """The whole photo at full resolution, upright."""
        if self.full is None:
            raise ValueError("this photo was prepared without its full photo")
        return self.full.get()


def open_photo(image, dim: int, cut: bool, decoder: Callable[[], ThreadPoolExecutor]) -> tuple[object, FullPhoto]:
    """What to prepare ``image`` from for a ``dim`` network, and its :class:`FullPhoto`.

    With ``cut``, a JPEG large enough to be decoded at 1/4 or 1/8 scale for the
    network is decoded in full in a thread meanwhile; any other photo is decoded
    once, in full, and prepared from that decode (the same input either way).
    Without, the full photo is decoded when first asked for. An open file's
    bytes are read once: each decode reads its own copy.
    """
    if hasattr(image, "read"):
        data, name = image.read(), getattr(image, "name", None)
        image, again = BytesIO(data), BytesIO(data)
        if isinstance(name, str):  # what a decoding error names
            image.name = again.name = name
    else:
        again = image
    if not cut:
        return image, FullPhoto(again)
    if not isinstance(image, (str, os.PathLike, BytesIO)) or not drafts_jpeg(image, dim):
        # in memory, or a file the network sees after a full decode anyway: decode once
        full = load_image(image)[0]
        return full, FullPhoto(image=full)
    return image, FullPhoto(pending=decoder().submit(load_image, again))


def find_subject(img: Image.Image, size: tuple[int, int], finder=None):
    """The subject ``finder`` picks in ``img``: a finder name (``"auto"``, ``"people"``, ``"faces"``, ``"saliency"``,
    ``"detector"``), an object with ``find(image, size=...)``, a function ``find(image, size=...)``, or
    None (:func:`gencrop.subject.find_subject`, the ``"auto"`` finder)."""
    how = "give the subject with subject=(x, y, w, h) in Python or --subject x,y,w,h on the command line"
    from . import subject as finders  # (tests replace find_subject there)

    finder = finders.find_subject if finder in (None, "auto") else finder
    if isinstance(finder, str) or hasattr(finder, "find"):
        finder = finders.resolve_finder(finder).find
    try:
        return finder(img, size=size)
    except finders.SubjectNotFound as e:
        raise SubjectRequired(f"{e}; or {how}") from None


def _is_found(subject) -> bool:
    """A subject a finder returned (:class:`gencrop.subject.Subject`): it carries what found it."""
    return all(hasattr(subject, a) for a in ("box", "source", "cls", "score"))


def prepare_photo(
    image, subject=None, subject_mask: np.ndarray | None = None, *, dim: int, mask_channel: bool, finder=None
) -> PreparedPhoto:
    """Decode ``image`` at the size a ``dim`` network needs, give or find its subject, letterbox it
    (with the subject-mask channel when ``mask_channel``)."""
    img, size = load_image(image, min_side=dim)
    width, height = size
    photo = Box(0, 0, width, height)
    mask = None
    source = "given"
    if subject_mask is not None and subject is not None:
        # An annotated box with its segmentation: the box is the subject, the mask feeds the mask channel.
        mask = np.asarray(subject_mask, dtype=bool)
        if mask.shape != (height, width):
            raise ValueError(f"subject mask is {mask.shape[1]}x{mask.shape[0]}, photo is {width}x{height}")
    elif subject_mask is not None:
        subject = subject_mask
    found_class = found_score = None
    if subject is None or _is_found(subject):
        found = find_subject(img, size, finder) if subject is None else subject
        subject_box, source = found.box, found.source
        mask = mask if mask is not None else found.mask
        found_class, found_score = found.cls, float(found.score)
    elif isinstance(subject, np.ndarray) and subject.ndim == 2:
        mask = subject.astype(bool)
        if mask.shape != (height, width):
            raise ValueError(f"subject mask is {mask.shape[1]}x{mask.shape[0]}, photo is {width}x{height}")
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            raise ValueError("subject mask is empty")
        subject_box = Box.from_xyxy(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        source = "mask"
    else:
        subject_box = subject if isinstance(subject, Box) else Box.from_xywh(subject)
    if subject_box.is_empty():
        raise ValueError(f"subject box {list(subject_box.xywh)} has no area")
    if photo.intersection(subject_box) <= 0:
        raise ValueError(f"subject box {list(subject_box.xywh)} lies outside the {width}x{height} photo")
    subject_box = subject_box.clamp(width, height)

    array, lb = letterbox_image(img, dim, size=size)
    subject_input = lb.to_input(subject_box)
    if mask_channel:
        if mask is not None:
            channel = letterbox_mask(mask, lb)
        else:
            channel = box_mask(subject_input, dim)
        array = np.concatenate([array, channel[None]], axis=0)
    return PreparedPhoto(array, subject_input, subject_box, lb, source, img, found_class, found_score)


def check_prepared(p: PreparedPhoto, subject, subject_mask, *, dim: int, mask_channel: bool) -> PreparedPhoto:
    """``p`` if it was prepared for a network like this one (and no second subject is given)."""
    if subject is not None or subject_mask is not None:
        raise ValueError("a prepared photo carries its subject already: prepare it with the subject instead")
    channels = 4 if mask_channel else 3
    if p.array.shape != (channels, dim, dim):
        raise ValueError(
            f"the photo was prepared for another model (input {'x'.join(map(str, p.array.shape))}, "
            f"this one takes {channels}x{dim}x{dim})"
        )
    return p
