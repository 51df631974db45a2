"""Cropping a user's photo: the Python API behind ``gencrop crop``.

>>> from gencrop import Cropper
>>> cropper = Cropper.from_pretrained()            # the bundled model
>>> result = cropper.crop("photo.jpg", subject=(120, 40, 200, 380))
>>> result.box                                       # Box in photo pixels

The network runs on onnxruntime or PyTorch (:mod:`gencrop.runtime`); all the
pre- and post-processing here is shared by both.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from .data.letterbox import Letterbox, box_mask, letterbox_image, letterbox_mask
from .geometry import Box
from .io import drafts_jpeg, load_image
from .runtime import Network, load_network, shape_request
from .shapes import Shape, fit_shape, pull_toward
from .subject_rule import keeps_subject

__all__ = ["Cropper", "CropResult", "PreparedPhoto", "SubjectRequired", "default_device"]


class SubjectRequired(ValueError):
    """No subject was given and no automatic subject finder is available."""


@dataclass
class CropResult:
    box: Box  # the crop: whole photo pixels, inside the photo (what is printed and cut)
    raw_box: Box  # the network's crop mapped to photo pixels, before clamping, shape and subject rules
    subject: Box  # the subject used, photo pixels
    heatmap: np.ndarray  # (rows, cols) cell weights of the weighted average (sum to 1)
    size: tuple[int, int]  # (width, height) of the upright photo
    subject_source: str = "given"  # "given", "mask", or what found it ("detection", "saliency")
    shape: Shape | None = None  # the requested shape (None: free)
    subject_kept: bool = False  # the crop was moved/grown to contain the subject
    subject_class: str | None = None  # a found subject: what the finder called it ("person", "salient", ...)
    subject_score: float | None = None  # a found subject: the finder's confidence in [0, 1]

    def __repr__(self) -> str:
        """One line: ``print(result)`` shows the crop, not the heatmap's numbers."""
        shape = "free" if self.shape is None else self.shape.name
        heatmap = "x".join(str(n) for n in np.shape(self.heatmap))
        return (
            f"CropResult(box={self.box!r}, subject={self.subject!r}, subject_source={self.subject_source!r}, "
            f"shape={shape!r}, size={tuple(self.size)!r}, subject_kept={self.subject_kept}, heatmap=<{heatmap}>)"
        )

    def to_json(self, photo: str | None = None) -> dict:
        d = {
            "crop": [int(v) for v in self.box.xywh],
            "subject": [round(v, 2) for v in self.subject.xywh],
            "size": list(self.size),
            "subject_source": self.subject_source,
            "subject_kept": self.subject_kept,
        }
        if self.subject_class is not None:
            d["subject_class"] = self.subject_class
        if self.subject_score is not None:
            d["subject_score"] = round(self.subject_score, 3)
        if self.shape is not None:
            d["shape"] = self.shape.name
        return {"photo": photo, **d} if photo is not None else d

    def cut(self, image: Image.Image) -> Image.Image:
        """The crop, cut out of the upright photo ``image`` (its full-size decode); resized to the
        requested output size when the shape has one."""
        if image.size != tuple(self.size):
            raise ValueError(
                f"image is {image.size[0]}x{image.size[1]}, the crop is for a {self.size[0]}x{self.size[1]} photo"
            )
        b = self.box
        out = image.crop((int(b.x), int(b.y), int(b.x2), int(b.y2)))
        if self.shape is not None and self.shape.size is not None and out.size != self.shape.size:
            out = out.resize(self.shape.size, Image.LANCZOS)
        return out


def default_device():
    """The best torch device here (CUDA, MPS, else CPU); needs the torch extra."""
    from .runtime.torch_network import default_device as best

    return best()


@dataclass
class PreparedPhoto:
    """A photo made ready for one Cropper's network (:meth:`Cropper.prepare`): decoded, reduced,
    letterboxed, its subject given or found.

    Preparing is the part of cropping that needs no model; a server prepares
    photos in its request threads while the model runs earlier ones, then hands
    them to :meth:`Cropper.crop_many` or :meth:`Cropper.crop_shapes`.
    """

    array: np.ndarray  # (C, dim, dim) network input
    subject_input: Box  # subject in input pixels
    subject: Box  # subject in photo pixels
    letterbox: Letterbox
    source: str  # "given", "mask", or what found the subject
    image: Image.Image  # the decode the input was made from (reduced for large photos)
    subject_class: str | None = None  # a found subject's class (None: given)
    subject_score: float | None = None  # a found subject's confidence (None: given)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the upright photo: the pixels crops are given in."""
        return (self.letterbox.width, self.letterbox.height)


def _is_found(subject) -> bool:
    """A subject a finder returned (:class:`gencrop.subject.Subject`): it carries what found it."""
    return all(hasattr(subject, a) for a in ("box", "source", "cls", "score"))


class Cropper:
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
        # a finder name ("auto", "faces", "saliency", "detector"), an object with find(image, size=...),
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
        epoch: int | None = None,
        device=None,
        subject_finder=None,
        runtime: str = "auto",
        spin_wait: bool = True,
    ) -> "Cropper":
        """Load a model directory, a hub id, an exported ``.onnx`` file, or (no argument) the bundled model.

        ``runtime``: ``"onnx"`` (onnxruntime, no torch needed), ``"torch"``, or
        ``"auto"`` (onnxruntime when the model has an up-to-date ``model.onnx``
        and no GPU is asked for; see :func:`gencrop.runtime.load_network`).
        ``spin_wait=False`` suits a process that does other work beside the
        network (a server decoding photos): onnxruntime's threads then sleep
        between steps instead of spinning. ``subject_finder`` finds the subject
        of a photo given without one: a name (``"auto"``, ``"faces"``,
        ``"saliency"``, ``"detector"``; see :mod:`gencrop.subjects`) or a finder
        object; default ``"auto"``.
        """
        network = load_network(path, runtime=runtime, device=device, epoch=epoch, spin_wait=spin_wait)
        return cls(network, subject_finder=subject_finder)

    # -- subject -------------------------------------------------------------
    def _find_subject(self, img: Image.Image, size: tuple[int, int]):
        how = "give the subject with subject=(x, y, w, h) in Python or --subject x,y,w,h on the command line"
        from .subject import SubjectNotFound, find_subject, resolve_finder  # (tests replace find_subject there)

        finder = find_subject if self._subject_finder in (None, "auto") else self._subject_finder
        if isinstance(finder, str) or hasattr(finder, "find"):
            finder = resolve_finder(finder).find
        try:
            return finder(img, size=size)
        except SubjectNotFound as e:
            raise SubjectRequired(f"{e}; or {how}") from None

    def prepare(self, image, subject=None, *, subject_mask: np.ndarray | None = None) -> PreparedPhoto:
        """Decode ``image`` (path, open binary file, PIL image or array) at the size the network
        needs and give or find its subject (as in :meth:`crop`); no network pass.

        The crop methods take the result in place of a photo (with no subject of their own)."""
        return self._prepare(image, subject, subject_mask)

    def _prepare(self, image, subject=None, subject_mask: np.ndarray | None = None) -> PreparedPhoto:
        if isinstance(image, PreparedPhoto):
            return self._check_prepared(image, subject, subject_mask)
        img, size = load_image(image, min_side=self.dim)
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
            found = self._find_subject(img, size) if subject is None else subject
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

        array, lb = letterbox_image(img, self.dim, size=size)
        subject_input = lb.to_input(subject_box)
        if self.network.info.use_subject_mask:
            if mask is not None:
                channel = letterbox_mask(mask, lb)
            else:
                channel = box_mask(subject_input, self.dim)
            array = np.concatenate([array, channel[None]], axis=0)
        return PreparedPhoto(array, subject_input, subject_box, lb, source, img, found_class, found_score)

    def _check_prepared(self, p: PreparedPhoto, subject, subject_mask) -> PreparedPhoto:
        if subject is not None or subject_mask is not None:
            raise ValueError("a prepared photo carries its subject already: prepare it with the subject instead")
        channels = 4 if self.network.info.use_subject_mask else 3
        if p.array.shape != (channels, self.dim, self.dim):
            raise ValueError(
                f"the photo was prepared for another model (input {'x'.join(map(str, p.array.shape))}, "
                f"this one takes {channels}x{self.dim}x{self.dim})"
            )
        return p

    # -- prediction ------------------------------------------------------------
    def _run_network(self, prepared: Sequence[PreparedPhoto], shapes: Sequence[Shape]) -> tuple[np.ndarray, np.ndarray]:
        """(B, 4) crops in input pixels (xyxy) and (B, rows, cols) cell weights, one row per prepared photo."""
        images = np.stack([p.array for p in prepared])
        subjects = np.array([p.subject_input.xyxy for p in prepared], np.float32)
        crops, weights = self.network(images, subjects, self._requests(shapes))
        return crops * self.dim, weights

    def _requests(self, shapes: Sequence[Shape]) -> np.ndarray | None:
        """GenCrop-C models read the requested shape; every model gets it exactly from :func:`fit_shape`."""
        if not self.network.info.takes_shape or all(s.is_free for s in shapes):
            return None
        return np.array([shape_request(area=s.area, aspect=s.aspect) for s in shapes], np.float32)

    def _result(
        self, p: PreparedPhoto, crop_input: np.ndarray, weights: np.ndarray, shape: Shape, keep_subject: bool | None
    ) -> CropResult:
        """The network's crop in photo pixels, then the user's rules: inside the photo, the shape, the subject."""
        width, height = p.letterbox.width, p.letterbox.height
        raw = p.letterbox.to_photo(Box.from_xyxy(*crop_input))
        box = raw.clamp(width, height)
        if box.is_empty():  # degenerate prediction: fall back to the subject's surroundings
            box = p.subject
        keep = keeps_subject(p.source, p.subject_class, p.subject_score) if keep_subject is None else bool(keep_subject)
        if keep:
            box = pull_toward(box, p.subject, self.subject_pull, width, height)
        final = fit_shape(box, shape, width, height, p.subject if keep else None)
        return CropResult(
            box=final,
            raw_box=raw,
            subject=p.subject,
            heatmap=weights,
            size=(width, height),
            subject_source=p.source,
            shape=None if shape.is_free else shape,
            subject_kept=keep,
            subject_class=p.subject_class,
            subject_score=p.subject_score,
        )

    def crop(
        self,
        image,
        subject=None,
        *,
        subject_mask: np.ndarray | None = None,
        aspect: float | str | None = None,
        area: float | None = None,
        size: tuple[int, int] | None = None,
        keep_subject: bool | None = None,
    ) -> CropResult:
        """Crop one photo around its subject.

        ``image``: path, open binary file, PIL image, array, or a :class:`PreparedPhoto`
        of this cropper's (which carries its subject). ``subject``: ``Box`` or ``(x, y, w, h)``
        in photo pixels, a bool mask of the photo's size, ``None`` to find it
        automatically, or a subject a finder returned earlier (:class:`gencrop.subject.Subject`,
        treated as found). ``subject_mask`` adds a segmentation to a given box (used
        by mask-channel models). ``aspect`` (w/h, or text such as ``"4:5"``),
        ``size`` ((W, H): crop at W:H, :meth:`CropResult.cut` resizes to it) and
        ``area`` (fraction of the photo) ask for a shape: the crop has exactly
        that aspect ratio in whole pixels. ``keep_subject``: a given subject is
        always inside the crop unless this is False (see :mod:`gencrop.shapes`);
        a found one when :mod:`gencrop.subject_rule` says so, unless this says otherwise.
        """
        shape = Shape.from_aspect(aspect, area, size)
        return self.crop_shapes_many(
            [image], [shape], [subject], subject_masks=[subject_mask], keep_subject=keep_subject
        )[0][0]

    def crop_shapes(
        self,
        image,
        shapes: Sequence[Shape | str],
        subject=None,
        *,
        subject_mask: np.ndarray | None = None,
        keep_subject: bool | None = None,
    ) -> list[CropResult]:
        """One crop per requested shape (``Shape`` or text: ``"1:1"``, ``"16:9"``, ``"1200x630"``, ``"free"``),
        from one decode of the photo and one network pass."""
        return self.crop_shapes_many(
            [image], shapes, [subject], subject_masks=[subject_mask], keep_subject=keep_subject
        )[0]

    def crop_full(
        self,
        image,
        subject=None,
        *,
        subject_mask: np.ndarray | None = None,
        aspect: float | str | None = None,
        area: float | None = None,
        size: tuple[int, int] | None = None,
        keep_subject: bool | None = None,
    ) -> tuple[CropResult, Image.Image]:
        """:meth:`crop`, plus the photo's full-resolution decode: for writing the cropped photo.

        The network sees a reduced decode (large JPEGs are decoded at 1/2 to 1/8
        scale, it needs 256 px); the full-resolution decode of a file runs
        meanwhile in a thread, so writing a 12 MP crop costs little more than
        predicting it. ``result.cut(full)`` is the cropped photo.
        """
        prepared, full = self.prepare_full(image, subject, subject_mask=subject_mask)
        return self.crop(prepared, aspect=aspect, area=area, size=size, keep_subject=keep_subject), full

    def crop_shapes_full(
        self,
        image,
        shapes: Sequence[Shape | str],
        subject=None,
        *,
        subject_mask: np.ndarray | None = None,
        keep_subject: bool | None = None,
    ) -> tuple[list[CropResult], Image.Image]:
        """:meth:`crop_shapes`, plus the full-resolution decode (as :meth:`crop_full`)."""
        prepared, full = self.prepare_full(image, subject, subject_mask=subject_mask)
        return self.crop_shapes(prepared, shapes, keep_subject=keep_subject), full

    def prepare_full(
        self, image, subject=None, *, subject_mask: np.ndarray | None = None
    ) -> tuple[PreparedPhoto, Image.Image]:
        """:meth:`prepare`, plus the photo's full-resolution decode (to cut the crop from).

        A JPEG large enough to be decoded at 1/4 or 1/8 scale for the network
        is decoded in full in a thread meanwhile; any other photo is decoded
        once, in full, and prepared from that decode (the same input either way).
        """
        if isinstance(image, PreparedPhoto):
            raise ValueError("a prepared photo has no full-resolution decode: pass the photo itself")
        if hasattr(image, "read"):  # an open file: each decode below reads its own copy of the bytes
            data, name = image.read(), getattr(image, "name", None)
            image, again = BytesIO(data), BytesIO(data)
            if isinstance(name, str):  # what a decoding error names
                image.name = again.name = name
        else:
            again = image
        if not isinstance(image, (str, os.PathLike, BytesIO)) or not drafts_jpeg(image, self.dim):
            # in memory, or a file the network sees after a full decode anyway: decode once
            full = load_image(image)[0]
            return self._prepare(full, subject, subject_mask), full
        full_decode = self._full_decoder().submit(load_image, again)
        try:
            prepared = self._prepare(image, subject, subject_mask)
        except BaseException:
            with contextlib.suppress(Exception):  # the preparation's error is the one to report
                full_decode.result()
            raise
        return prepared, full_decode.result()[0]

    def _full_decoder(self) -> ThreadPoolExecutor:
        with self._decoder_lock:
            if self._decoder is None:
                self._decoder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gencrop-decode")
            return self._decoder

    def crop_many(
        self,
        images: Iterable,
        subjects: Iterable | None = None,
        *,
        subject_masks: Iterable | None = None,
        batch_size: int = 8,
        aspect: float | str | None = None,
        area: float | None = None,
        size: tuple[int, int] | None = None,
        keep_subject: bool | None = None,
    ) -> list[CropResult]:
        """Crop several photos (any sizes) in batches; ``subjects``/``subject_masks`` and the shape as in :meth:`crop`."""
        shape = Shape.from_aspect(aspect, area, size)
        per_photo = self.crop_shapes_many(
            images, [shape], subjects, subject_masks=subject_masks, batch_size=batch_size, keep_subject=keep_subject
        )
        return [crops[0] for crops in per_photo]

    def crop_shapes_many(
        self,
        images: Iterable,
        shapes: Sequence[Shape | str],
        subjects: Iterable | None = None,
        *,
        subject_masks: Iterable | None = None,
        batch_size: int = 8,
        keep_subject: bool | None = None,
    ) -> list[list[CropResult]]:
        """:meth:`crop_shapes` for several photos: one list of crops (one per shape) per photo, one
        network pass per batch of photos."""
        shapes = [s if isinstance(s, Shape) else Shape.parse(s) for s in shapes]
        if not shapes:
            raise ValueError("no shapes asked for")
        results: list[list[CropResult]] = []
        for chunk in self._prepared_batches(images, subjects, subject_masks, batch_size):
            if self.network.info.takes_shape:  # the shape goes into the network: one row per photo and shape
                crops, weights = self._run_network([p for p in chunk for _ in shapes], shapes * len(chunk))
            else:  # one row per photo, whatever the shapes
                c, w = self._run_network(chunk, [Shape()] * len(chunk))
                crops, weights = np.repeat(c, len(shapes), 0), np.repeat(w, len(shapes), 0)
            n = len(shapes)
            for i, p in enumerate(chunk):
                rows = zip(shapes, crops[i * n : (i + 1) * n], weights[i * n : (i + 1) * n])
                results.append([self._result(p, c, w, s, keep_subject) for s, c, w in rows])
        return results

    def _prepared_batches(self, images: Iterable, subjects, subject_masks, batch_size: int):
        """The photos prepared, ``batch_size`` at a time (each batch only when it is needed)."""
        images = list(images)
        subjects = list(subjects) if subjects is not None else [None] * len(images)
        masks = list(subject_masks) if subject_masks is not None else [None] * len(images)
        if not len(subjects) == len(masks) == len(images):
            raise ValueError(f"{len(images)} photos but {len(subjects)} subjects and {len(masks)} masks")
        for start in range(0, len(images), batch_size):
            end = start + batch_size
            yield [
                self._prepare(im, sb, mk)
                for im, sb, mk in zip(images[start:end], subjects[start:end], masks[start:end])
            ]
