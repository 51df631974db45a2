"""The crop methods that :meth:`gencrop.inference.Cropper.crop` replaces; they work, with a warning,
for one release (see CHANGELOG.md)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

from .crop_prepare import PreparedPhoto

__all__ = ["DeprecatedCropCalls"]


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"Cropper.{old} is deprecated and goes in the next release; use {new}", DeprecationWarning, 3)


class DeprecatedCropCalls:
    """Mixed into :class:`gencrop.inference.Cropper`: each old method is one ``crop`` call."""

    def crop_shapes(self, image, shapes: Sequence, subject=None, *, subject_mask=None, keep_subject=None):
        _deprecated("crop_shapes", "crop(image, subject, shapes=[...])")
        return self.crop(image, subject, shapes=list(shapes), subject_mask=subject_mask, keep_subject=keep_subject)

    def crop_full(
        self, image, subject=None, *, subject_mask=None, aspect=None, area=None, size=None, keep_subject=None
    ):
        _deprecated("crop_full", "crop(image, subject, cut=True) and result.image")
        result = self.crop(
            image,
            subject,
            subject_mask=subject_mask,
            aspect=aspect,
            area=area,
            size=size,
            keep_subject=keep_subject,
            cut=True,
        )
        return result, result.photo

    def crop_shapes_full(self, image, shapes: Sequence, subject=None, *, subject_mask=None, keep_subject=None):
        _deprecated("crop_shapes_full", "crop(image, subject, shapes=[...], cut=True) and result.image")
        results = self.crop(
            image, subject, shapes=list(shapes), subject_mask=subject_mask, keep_subject=keep_subject, cut=True
        )
        return results, results[0].photo

    def prepare_full(self, image, subject=None, *, subject_mask=None):
        _deprecated("prepare_full", "prepare(image, subject, cut=True) and prepared.photo")
        if isinstance(image, PreparedPhoto):
            raise ValueError("a prepared photo has no full-resolution decode: pass the photo itself")
        prepared = self.prepare(image, subject, subject_mask=subject_mask, cut=True)
        return prepared, prepared.photo

    def crop_many(self, images: Iterable, subjects=None, *, subject_masks=None, batch_size: int = 8, **shape):
        _deprecated("crop_many", "crop(images, subjects)")
        return list(self.crop(images, subjects, subject_mask=subject_masks, batch_size=batch_size, **shape))

    def crop_shapes_many(
        self, images: Iterable, shapes: Sequence, subjects=None, *, subject_masks=None, batch_size=8, keep_subject=None
    ):
        _deprecated("crop_shapes_many", "crop(images, subjects, shapes=[...])")
        return list(
            self.crop(
                images,
                subjects,
                shapes=list(shapes),
                subject_mask=subject_masks,
                batch_size=batch_size,
                keep_subject=keep_subject,
            )
        )
