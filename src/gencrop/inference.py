"""Cropping photos from Python: :class:`Cropper`, the API behind ``gencrop crop`` and ``gencrop serve``.

>>> from gencrop import Cropper
>>> cropper = Cropper.from_pretrained()                    # the bundled model
>>> result = cropper.crop("photo.jpg", subject=(120, 40, 200, 380))
>>> result.box                                               # Box in photo pixels
>>> result.image.save("photo_crop.jpg")                      # the cropped photo, full resolution

The network runs on onnxruntime or PyTorch (:mod:`gencrop.runtime`). Preparing
a photo is :mod:`gencrop.crop_prepare`, the network pass and the crop rules
:mod:`gencrop.crop_batch`, the result :mod:`gencrop.crop_result`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from numbers import Real
from pathlib import Path

import numpy as np
from PIL import Image

from .crop_batch import crop_prepared
from .crop_deprecated import DeprecatedCropCalls
from .crop_prepare import PreparedPhoto, SubjectRequired, check_prepared, open_photo, prepare_photo
from .crop_result import CropResult
from .geometry import Box
from .runtime import Network, load_network
from .shapes import Shape

__all__ = ["Cropper", "CropResult", "PreparedPhoto", "SubjectRequired", "default_device"]

ONE_PHOTO = (str, os.PathLike, Image.Image, np.ndarray, PreparedPhoto)


def default_device():
    """The best torch device here (CUDA, MPS, else CPU); needs the torch extra."""
    from .runtime.torch_network import default_device as best

    return best()


class Cropper(DeprecatedCropCalls):
    """A GenCrop model with the pre- and post-processing to crop real photos."""

    def __init__(self, model, device=None, subject_finder=None):
        """``model``: a :class:`~gencrop.runtime.Network` (any runtime) or a GenCrop torch module."""
        if not hasattr(model, "runtime"):
            from .runtime.torch_network import TorchNetwork

            model = TorchNetwork(model, device=device)
        self.network: Network = model
        self.dim = model.info.image_size
        # how far a kept subject draws the crop toward it (gencrop.shapes.pull_toward); per model
        self.subject_pull = model.info.subject_pull
        # a finder name ("auto", "people", "faces", "saliency", "detector"), an object with find(image, size=...),
        # or a function find(image, size=...); None: gencrop.subjects.find_subject (the "auto" finder)
        if isinstance(subject_finder, str):  # an unknown name fails here, not at the first photo
            from .subject import resolve_finder

            resolve_finder(subject_finder)
        self._subject_finder = subject_finder
        self._decoder: ThreadPoolExecutor | None = None  # full-resolution decodes beside the network
        self._decoder_lock = threading.Lock()

    def __repr__(self) -> str:
        i = self.network.info
        return (
            f"Cropper(runtime={self.runtime!r}, variant={i.variant!r}, image_size={i.image_size}, "
            f"subject_mask={i.use_subject_mask}, subject_pull={self.subject_pull})"
        )

    @property
    def runtime(self) -> str:
        """``"onnx"`` or ``"torch"``: what runs the network."""
        return self.network.runtime

    @property
    def model(self):
        """The torch module (PyTorch runtime only)."""
        if self.network.runtime != "torch":
            raise AttributeError(
                f"this cropper runs on the {self.network.runtime} runtime and has no torch "
                f"module; load it with runtime='torch'"
            )
        return self.network.model

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | None = None,
        *,
        epoch=None,
        device=None,
        subject_finder=None,
        runtime="auto",
        spin_wait=True,
    ) -> Cropper:
        """Load a model directory, a hub id, an exported ``.onnx`` file, or (no argument) the bundled model.

        ``runtime``: ``"onnx"`` (onnxruntime, no torch needed), ``"torch"``, or ``"auto"``
        (onnxruntime when the model has an up-to-date ``model.onnx`` and no GPU is asked for; see
        :func:`gencrop.runtime.load_network`). ``spin_wait=False`` suits a process that does other
        work beside the network (a server decoding photos): onnxruntime's threads then sleep between
        steps instead of spinning. ``subject_finder`` finds the subject of a photo given without one:
        a name (``"auto"``, ``"people"``, ``"faces"``, ``"saliency"``, ``"detector"``; see :mod:`gencrop.subjects`)
        or a finder object; default ``"auto"``.
        """
        network = load_network(path, runtime=runtime, device=device, epoch=epoch, spin_wait=spin_wait)
        return cls(network, subject_finder=subject_finder)

    def crop(
        self,
        photos,
        subject=None,
        *,
        shapes=None,
        subject_mask=None,
        aspect: float | str | None = None,
        area: float | None = None,
        size: tuple[int, int] | None = None,
        keep_subject: bool | None = None,
        cut: bool = False,
        batch_size: int = 8,
    ):
        """Crop one photo, or many, around its subject.

        ``photos``: one photo (a path, an open binary file, a PIL image, an array, or a
        :meth:`prepare`\\ d photo) gives one result; an iterable of them (a list, a generator)
        gives an iterator of results, in order, computed ``batch_size`` photos per network pass as
        you iterate.

        ``subject``: ``Box`` or ``(x, y, w, h)`` in photo pixels, a bool mask of the photo's size,
        ``None`` to find it automatically, or a subject a finder returned earlier
        (:class:`gencrop.subject.Subject`, treated as found); for many photos, an iterable with one
        per photo.
        ``subject_mask`` adds a segmentation to a given box (used by mask-channel models).

        ``shapes``: one shape (``"1:1"``, ``"16:9"``, ``"0.8"``, ``"1200x630"``, ``"free"`` or a
        :class:`~gencrop.shapes.Shape`) gives a :class:`CropResult` per photo; a list of shapes
        gives a list of results per photo, one per shape, from one decode and one network pass.
        ``aspect`` (w/h or text), ``size`` ((W, H)) and ``area`` (fraction of the photo) are the
        same as one shape. Every crop has exactly the requested aspect in whole pixels.

        ``keep_subject``: a given subject is always inside the crop unless this is False (see
        :mod:`gencrop.shapes`); a found one when :mod:`gencrop.subject_rule` says so, unless this
        says otherwise.

        A :class:`CropResult` has ``box`` (the crop: whole photo pixels, inside the photo),
        ``subject`` and ``subject_source`` (``"given"``, ``"mask"`` or what found it; a found one's
        ``subject_class`` and ``subject_score``), ``subject_kept``, ``heatmap`` (the cell weights behind the crop), ``size`` (the upright
        photo's), ``to_json()``, and ``image``: the cropped photo at full resolution (resized to a
        ``"WxH"`` shape's size), decoded when first asked for, or in a thread beside the network
        with ``cut=True`` (when you will cut every crop).

        >>> cropper.crop("a.jpg", (120, 40, 200, 380)).image.save("a_crop.jpg")
        >>> square, card = cropper.crop("a.jpg", shapes=["1:1", "1200x630"])   # subject found
        >>> for r in cropper.crop(paths, subjects, shapes="4:5", cut=True): r.image.save(...)
        """
        shape_list, several = _shapes(shapes, aspect, area, size)
        if _is_one_photo(photos):
            prepared = self.prepare(photos, subject, subject_mask=subject_mask, cut=cut)
            crops = crop_prepared(
                self.network, [prepared], shape_list, keep_subject=keep_subject, subject_pull=self.subject_pull
            )[0]
            return crops if several else crops[0]
        return self._crop_many(photos, subject, subject_mask, shape_list, several, keep_subject, cut, batch_size)

    def _crop_many(self, photos, subjects, masks, shapes, several, keep_subject, cut, batch_size) -> Iterator:
        items = _together(photos, subjects, masks)
        while chunk := list(islice(items, batch_size)):
            prepared = [self.prepare(photo, subject, subject_mask=mask, cut=cut) for photo, subject, mask in chunk]
            for crops in crop_prepared(
                self.network, prepared, shapes, keep_subject=keep_subject, subject_pull=self.subject_pull
            ):
                yield crops if several else crops[0]

    def prepare(self, image, subject=None, *, subject_mask: np.ndarray | None = None, cut: bool = False):
        """``image`` decoded at the size the network needs, its subject given or found (as in
        :meth:`crop`), letterboxed: a :class:`PreparedPhoto` that :meth:`crop` takes in place of a
        photo. No network pass, so it can run in other threads (as ``gencrop serve`` does).
        ``cut=True`` decodes the full-resolution photo meanwhile (``prepared.photo``)."""
        mask_channel = self.network.info.use_subject_mask
        if isinstance(image, PreparedPhoto):
            return check_prepared(image, subject, subject_mask, dim=self.dim, mask_channel=mask_channel)
        source, full = open_photo(image, self.dim, cut, self._full_decoder)
        try:
            prepared = prepare_photo(
                source, subject, subject_mask, dim=self.dim, mask_channel=mask_channel, finder=self._subject_finder
            )
        except BaseException:
            full.discard()  # the preparation's error is the one to report
            raise
        prepared.full = full
        return prepared

    def _full_decoder(self) -> ThreadPoolExecutor:
        with self._decoder_lock:
            if self._decoder is None:
                self._decoder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gencrop-decode")
            return self._decoder


def _is_one_photo(photos) -> bool:
    if isinstance(photos, (bytes, bytearray)):
        raise TypeError("give a photo's bytes as an open file: io.BytesIO(data)")
    return isinstance(photos, ONE_PHOTO) or hasattr(photos, "read")


def _shapes(shapes, aspect, area, size) -> tuple[list[Shape], bool]:
    """The requested shapes, and whether several were asked for (a list back) or one."""
    if shapes is None:
        return [Shape.from_aspect(aspect, area, size)], False
    if aspect is not None or area is not None or size is not None:
        raise ValueError("give the shape as shapes= or as aspect=/area=/size=, not both")
    if isinstance(shapes, (str, Shape)):
        return [shapes if isinstance(shapes, Shape) else Shape.parse(shapes)], False
    parsed = [s if isinstance(s, Shape) else Shape.parse(s) for s in shapes]
    if not parsed:
        raise ValueError("no shapes asked for")
    return parsed, True


def _together(photos: Iterable, subjects, masks) -> Iterator[tuple]:
    """``(photo, subject, mask)`` triples: one subject (and mask) per photo, or none at all."""
    one_box = isinstance(subjects, (list, tuple)) and len(subjects) == 4 and all(isinstance(v, Real) for v in subjects)
    if isinstance(subjects, (Box, np.ndarray)) or one_box:
        raise ValueError("several photos take one subject per photo: a list of subjects")
    end = object()
    columns = [None if c is None else iter(c) for c in (subjects, masks)]
    for photo in photos:
        subject, mask = (None if c is None else next(c, end) for c in columns)
        if subject is end or mask is end:
            raise ValueError("more photos than subjects (or masks): give one per photo")
        yield photo, subject, mask
    if any(c is not None and next(c, end) is not end for c in columns):
        raise ValueError("more subjects (or masks) than photos")
