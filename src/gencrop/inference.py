"""Cropping a user's photo: the Python API behind ``gencrop crop``.

>>> from gencrop import Cropper
>>> cropper = Cropper.from_pretrained()            # the bundled model
>>> result = cropper.crop("photo.jpg", subject=(120, 40, 200, 380))
>>> result.box                                       # Box in photo pixels
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from .data.letterbox import Letterbox, box_mask, letterbox_image, letterbox_mask
from .geometry import Box
from .io import load_image

__all__ = ["Cropper", "CropResult", "SubjectRequired", "default_device"]


class SubjectRequired(ValueError):
    """No subject was given and no automatic subject finder is available."""


@dataclass
class CropResult:
    box: Box               # the crop, photo pixels, inside the photo
    raw_box: Box           # the network's crop mapped to photo pixels, before clamping
    subject: Box           # the subject used, photo pixels
    heatmap: np.ndarray    # (rows, cols) cell weights of the weighted average (sum to 1)
    size: tuple[int, int]  # (width, height) of the upright photo
    subject_source: str = "given"  # "given", "mask", or what found it ("detection", "saliency")

    def to_json(self, photo: str | None = None) -> dict:
        d = {"crop": [round(v, 2) for v in self.box.xywh],
             "subject": [round(v, 2) for v in self.subject.xywh],
             "size": list(self.size), "subject_source": self.subject_source}
        return {"photo": photo, **d} if photo is not None else d

    def cut(self, image: Image.Image) -> Image.Image:
        """The crop, cut out of the upright photo ``image`` (its full-size decode) at whole pixels."""
        if image.size != tuple(self.size):
            raise ValueError(f"image is {image.size[0]}x{image.size[1]}, the crop is for a "
                             f"{self.size[0]}x{self.size[1]} photo")
        b = self.box.rounded()
        return image.crop((int(b.x), int(b.y), int(b.x2), int(b.y2)))


def default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _autocast(device: torch.device):
    """fp16 autocast on CUDA only: CPU inference stays float32 (faster and exact there)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


@dataclass
class _Prepared:
    array: np.ndarray        # (C, dim, dim) network input
    subject_input: Box       # subject in input pixels
    subject: Box             # subject in photo pixels
    letterbox: Letterbox
    source: str
    image: Image.Image


class Cropper:
    """A GenCrop model with the pre- and post-processing to crop real photos."""

    def __init__(self, model, device: str | torch.device | None = None, subject_finder=None):
        from .modeling.fusion import optimize_for_inference

        self.device = torch.device(device) if device is not None else default_device()
        # BatchNorms are folded into convolutions: ``self.model`` is for inference only.
        self.model = optimize_for_inference(model.eval().to(self.device), model.config.image_size,
                                            model.config.in_channels)
        self.dim = model.config.image_size
        self._subject_finder = subject_finder  # default: gencrop.subject.find_subject
        self._decoder: ThreadPoolExecutor | None = None  # full-resolution decodes beside the network

    def __repr__(self) -> str:
        c = self.model.config
        return (f"Cropper(arch={c.arch!r}, variant={c.variant!r}, image_size={c.image_size}, "
                f"subject_mask={c.use_subject_mask}, subject_weighting={c.subject_weighting!r}, "
                f"device={str(self.device)!r})")

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, *, epoch: int | None = None,
                        device: str | torch.device | None = None, subject_finder=None) -> "Cropper":
        """Load a model directory, a hub id, or (no argument) the model bundled with gencrop."""
        from .modeling.checkpoints import load_model

        return cls(load_model(None, path, epoch=epoch), device=device, subject_finder=subject_finder)

    # -- subject -------------------------------------------------------------
    def _find_subject(self, img: Image.Image, size: tuple[int, int]):
        how = "give the subject with subject=(x, y, w, h) in Python or --subject x,y,w,h on the command line"
        try:
            from .subject import SubjectNotFound, find_subject
        except ImportError as e:
            raise SubjectRequired(f"no subject given and no subject finder available ({e}); {how}") from None
        finder = self._subject_finder or find_subject
        try:
            return finder(img, size=size)
        except SubjectNotFound as e:
            raise SubjectRequired(f"{e}; or {how}") from None

    def _prepare(self, image, subject=None, subject_mask: np.ndarray | None = None) -> _Prepared:
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
        if subject is None:
            found = self._find_subject(img, size)
            subject_box, mask, source = found.box, found.mask, found.source
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
            raise ValueError(f"subject box {list(subject_box.xywh)} lies outside the "
                             f"{width}x{height} photo")
        subject_box = subject_box.clamp(width, height)

        array, lb = letterbox_image(img, self.dim, size=size)
        subject_input = lb.to_input(subject_box)
        if self.model.config.use_subject_mask:
            if mask is not None:
                channel = letterbox_mask(mask, lb)
            else:
                channel = box_mask(subject_input, self.dim)
            array = np.concatenate([array, channel[None]], axis=0)
        return _Prepared(array, subject_input, subject_box, lb, source, img)

    # -- prediction ------------------------------------------------------------
    @torch.inference_mode()
    def _predict(self, prepared: Sequence[_Prepared], **conditioning) -> list[CropResult]:
        x = torch.from_numpy(np.stack([p.array for p in prepared])).to(self.device)
        x = x.contiguous(memory_format=torch.channels_last)
        s = torch.tensor([p.subject_input.xyxy for p in prepared], dtype=torch.float32, device=self.device)
        cond = {k: torch.as_tensor(v, dtype=torch.float32, device=self.device) for k, v in conditioning.items()}
        with _autocast(self.device):
            out = self.model(x, s, **cond)
        crops = out.crop.float().cpu().numpy() * self.dim
        weights = out.weights.float().cpu().numpy()
        results = []
        for p, c, w in zip(prepared, crops, weights):
            raw = p.letterbox.to_photo(Box.from_xyxy(*c))
            box = raw.clamp(p.letterbox.width, p.letterbox.height)
            if box.is_empty():  # degenerate prediction: fall back to the subject's surroundings
                box = p.subject
            results.append(CropResult(box=box, raw_box=raw, subject=p.subject, heatmap=w,
                                      size=(p.letterbox.width, p.letterbox.height),
                                      subject_source=p.source))
        return results

    def _conditioning(self, n: int, aspect: float | None, area: float | None) -> dict:
        if aspect is None and area is None:
            return {}
        if self.model.config.variant != "gencrop-c":
            raise ValueError("this model does not take a requested shape (aspect/area); "
                             "use a model trained with --variant gencrop-c")
        return self.model.shape_conditioning(n, aspect=aspect, area=area)

    def crop(self, image, subject=None, *, subject_mask: np.ndarray | None = None,
             aspect: float | None = None, area: float | None = None) -> CropResult:
        """Crop one photo around its subject.

        ``image``: path, PIL image or array. ``subject``: ``Box`` or ``(x, y, w, h)``
        in photo pixels, a bool mask of the photo's size, or ``None`` to find it
        automatically. ``subject_mask`` adds a segmentation to a given box (used
        by mask-channel models). ``aspect`` (w/h) and ``area`` (fraction of the
        photo) ask a GenCrop-C model for a shape.
        """
        p = self._prepare(image, subject, subject_mask)
        return self._predict([p], **self._conditioning(1, aspect, area))[0]

    def crop_full(self, image, subject=None, *, subject_mask: np.ndarray | None = None,
                  aspect: float | None = None, area: float | None = None) -> tuple[CropResult, Image.Image]:
        """:meth:`crop`, plus the photo's full-resolution decode: for writing the cropped photo.

        The network sees a reduced decode (large JPEGs are decoded at 1/2 to 1/8
        scale, it needs 256 px); the full-resolution decode of a file runs
        meanwhile in a thread, so writing a 12 MP crop costs little more than
        predicting it. ``result.cut(full)`` is the cropped photo.
        """
        if not isinstance(image, (str, os.PathLike)):  # in memory: convert once, crop that
            full = load_image(image)[0]
            return self.crop(full, subject, subject_mask=subject_mask, aspect=aspect, area=area), full
        if self._decoder is None:
            self._decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gencrop-decode")
        full = self._decoder.submit(load_image, image)
        try:
            result = self.crop(image, subject, subject_mask=subject_mask, aspect=aspect, area=area)
        except BaseException:
            with contextlib.suppress(Exception):  # the crop's error is the one to report
                full.result()
            raise
        return result, full.result()[0]

    def crop_many(self, images: Iterable, subjects: Iterable | None = None, *,
                  subject_masks: Iterable | None = None, batch_size: int = 8,
                  aspect: float | None = None, area: float | None = None) -> list[CropResult]:
        """Crop several photos (any sizes) in batches; ``subjects``/``subject_masks`` as in :meth:`crop`."""
        images = list(images)
        subjects = list(subjects) if subjects is not None else [None] * len(images)
        masks = list(subject_masks) if subject_masks is not None else [None] * len(images)
        if not len(subjects) == len(masks) == len(images):
            raise ValueError(f"{len(images)} photos but {len(subjects)} subjects and {len(masks)} masks")
        results: list[CropResult] = []
        for start in range(0, len(images), batch_size):
            end = start + batch_size
            chunk = [self._prepare(im, sb, mk) for im, sb, mk in
                     zip(images[start:end], subjects[start:end], masks[start:end])]
            results.extend(self._predict(chunk, **self._conditioning(len(chunk), aspect, area)))
        return results
