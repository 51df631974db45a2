"""The torch Dataset the training loop reads: one letterboxed view per photo per epoch.

Every box in an item is xyxy in pixels of the ``dim`` x ``dim`` input:

* ``image`` (C, dim, dim): the letterboxed view, ImageNet-normalised; with
  ``use_subject`` a 4th channel holds the subject mask.
* ``crop``: the true frame; ``valid``: where the view lies in the input
  (the rest is padding); ``subject``: the subject box given to the model
  (jittered, like a detector's); ``subject_mask_box``: the bounds of the
  subject's mask, which the boundary loss keeps the predicted edges away from.

Draws are seeded by ``(seed, epoch, index)``, so an item does not depend on
which worker (or process) loads it, and a resumed run sees the same data.
With ``shuffle`` the order of the photos is drawn anew each epoch from
``(seed, epoch)`` too: a different order every epoch, the same one again when a
run is resumed, and every process of a multi-process run derives the same
order and takes its own share of it (:meth:`TrainingSet.process_share`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..geometry import Box
from ..io import ImageReadError, load_image, polygon_to_mask
from ..validation import DataError
from .composite import canvas_size, paint_tile, place_tiles, tile_count
from .letterbox import Letterbox, box_mask, letterbox_image
from .outpaint import OutpaintSet, Variation
from .sampling import ViewSampler, jitter_box, photometric_augment

__all__ = ["TrainingSet", "collate"]

SUBJECT_JITTER = 0.10


@dataclass
class _Choice:
    variation: Variation
    photo_index: int


class TrainingSet(torch.utils.data.Dataset):
    """Views of an :class:`OutpaintSet`; call :meth:`set_epoch` before each epoch.

    With ``composite_prob`` an item is, that often, its photo laid out with 1-3
    others on one canvas (:mod:`gencrop.data.composite`): the target is its own
    frame, and only the given subject says which photo that is.

    ``augment=False`` gives the validation behaviour: still a random (but
    fixed per index) enlarged view, no photometric change, no flip, no jitter.
    ``shuffle`` orders the photos at random each epoch (training); without it
    they keep the order of the set (validation).
    """

    def __init__(
        self,
        data: OutpaintSet,
        dim: int = 256,
        *,
        use_subject: bool = False,
        augment: bool = True,
        invert: bool = True,
        max_len: int | None = None,
        seed: int = 0,
        sampler: ViewSampler | None = None,
        composite_prob: float = 0.0,
        shuffle: bool = False,
    ):
        if data.num_photos == 0:
            raise ValueError("the training set is empty (no usable variations)")
        self.data = data
        self.dim = int(dim)
        self.use_subject = use_subject
        self.augment = augment
        self.invert = invert
        self.max_len = max_len
        self.seed = int(seed)
        self.sampler = sampler or ViewSampler()
        if not 0.0 <= composite_prob <= 1.0:
            raise ValueError(f"composite_prob must be in [0, 1]; got {composite_prob}")
        self.composite_prob = float(composite_prob)
        self.shuffle = bool(shuffle)
        self._photos = list(data.groups)
        self._unreadable: set[str] = set()  # canvases already reported by this process
        self.epoch = -1
        self.set_epoch(0)

    # -- epochs ----------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Draw the photos of this epoch and their order (``max_len``, ``shuffle``), and one variation each."""
        self.epoch = int(epoch)
        rng = np.random.default_rng((self.seed, self.epoch, 0x5EED))
        order = np.arange(len(self._photos))
        if self.max_len is not None and self.max_len < len(order):
            order = rng.permutation(len(order))[: self.max_len]
            if not self.shuffle:
                order = np.sort(order)
        elif self.shuffle:
            order = rng.permutation(len(order))
        self._items = []
        for i in order:
            variations = self.data.groups[self._photos[i]]
            self._items.append(_Choice(variations[int(rng.integers(len(variations)))], int(i)))

    def __len__(self) -> int:
        return len(self._items)

    def process_share(self, rank: int = 0, num_processes: int = 1) -> list[int]:
        """The item indices process ``rank`` of ``num_processes`` trains on this epoch.

        Every ``num_processes``-th item from ``rank``: the shares are disjoint and
        equally long (processes that step together must run the same number of
        batches), so the last ``len % num_processes`` items are left out; with
        ``shuffle`` those are other photos each epoch.
        """
        if not 0 <= rank < num_processes:
            raise ValueError(f"rank must be in [0, {num_processes}); got {rank}")
        usable = len(self._items) - len(self._items) % num_processes
        return list(range(rank, usable, num_processes))

    def room_report(self, threshold: float = 1.05) -> dict:
        """How many variations leave room for an enlarged view (real-context frames often do not)."""
        rooms = [self.sampler.room(v.crop, v.width, v.height) for vs in self.data.groups.values() for v in vs]
        return {
            "variations": len(rooms),
            "with_room": int(sum(r >= threshold for r in rooms)),
            "median_room": float(np.median(rooms)) if rooms else float("nan"),
        }

    # -- items -----------------------------------------------------------------
    def __getitem__(self, index: int) -> dict:
        """The item, or, when its canvas cannot be read, the next readable one (flagged ``replaced``).

        One bad canvas must not abort an epoch: the failure is printed once
        per canvas and process, and counted by the loop through ``replaced``.
        """
        n = len(self._items)
        for step in range(n):
            choice = self._items[(index + step) % n]
            rng = np.random.default_rng((self.seed, self.epoch if self.augment else 0, choice.photo_index))
            try:
                if (
                    self.composite_prob > 0
                    and choice.variation.subject is not None
                    and len(self._photos) > 1
                    and rng.random() < self.composite_prob
                ):
                    item = self.render_composite(choice, rng)
                else:
                    item = self.render(choice.variation, rng)
            except (ImageReadError, OSError) as e:
                if choice.variation.img_file not in self._unreadable:
                    self._unreadable.add(choice.variation.img_file)
                    print(
                        f"gencrop train: warning: {e}; another example is used in its place",
                        file=sys.stderr,
                        flush=True,
                    )
                continue
            item["replaced"] = torch.tensor(float(step > 0))
            return item
        raise DataError("no canvas of the set can be read", self.data.image_dir)

    def render(self, v: Variation, rng: np.random.Generator) -> dict:
        dim = self.dim
        view, _ = self.sampler.sample(v.crop, v.width, v.height, rng, invert=self.invert)
        # decode large canvases at reduced size: the view only needs `dim` pixels on its long side
        min_side = int(math.ceil(min(v.width, v.height) * dim / max(view.w, view.h))) + 1
        img, full = load_image(self.data.image_dir / v.img_file, min_side=min_side)
        # A reduced decode rounds each side separately: scale x and y on their own and
        # keep the box inside the decoded image (a frame may touch the canvas edge).
        fx, fy = img.size[0] / full[0], img.size[1] / full[1]
        lb = Letterbox(int(view.w), int(view.h), dim)
        small = img.resize(
            lb.resized,
            Image.BILINEAR,
            box=(
                max(0.0, view.x * fx),
                max(0.0, view.y * fy),
                min(img.size[0], view.x2 * fx),
                min(img.size[1], view.y2 * fy),
            ),
        )
        if self.augment:
            small = photometric_augment(small, rng)
        arr, lb = letterbox_image(small, dim, size=(int(view.w), int(view.h)))
        (ox, oy), (rw, rh) = lb.offset, lb.resized
        sx, sy = rw / view.w, rh / view.h
        placement = _Placement(sx, sy, ox - view.x * sx, oy - view.y * sy)
        return self._finish(arr, v, placement, lb.valid, rng)

    def render_composite(self, choice: _Choice, rng: np.random.Generator) -> dict:
        """``choice``'s photo among 1-3 other photos on one canvas; its frame is the target."""
        dim = self.dim
        count = min(tile_count(rng), len(self._photos))
        others = [int(i) for i in rng.permutation(len(self._photos)) if int(i) != choice.photo_index][: count - 1]
        variations = [choice.variation]
        for i in others:
            group = self.data.groups[self._photos[i]]
            variations.append(group[int(rng.integers(len(group)))])
        canvas_w, canvas_h = canvas_size(dim, rng)
        tiles = place_tiles([(v.width, v.height) for v in variations], (canvas_w, canvas_h), rng)
        canvas = Image.new("RGB", (canvas_w, canvas_h))
        for v, tile in zip(variations, tiles):
            need = max(tile.placed.w, tile.placed.h)
            min_side = int(math.ceil(min(v.width, v.height) * need / max(v.width, v.height))) + 1
            img, _ = load_image(self.data.image_dir / v.img_file, min_side=min_side)
            paint_tile(canvas, img, tile)
        if self.augment:
            canvas = photometric_augment(canvas, rng)
        arr, lb = letterbox_image(canvas, dim)
        target = tiles[0]
        (ox, oy) = lb.offset
        placement = _Placement(target.scale[0], target.scale[1], target.offset[0] + ox, target.offset[1] + oy)
        return self._finish(
            arr,
            choice.variation,
            placement,
            placement.to_input(Box(0, 0, choice.variation.width, choice.variation.height)),
            rng,
        )

    def _finish(
        self, arr: np.ndarray, v: Variation, placement: "_Placement", valid: Box, rng: np.random.Generator
    ) -> dict:
        """The item: boxes of ``v`` mapped into the input, the subject mask channel, jitter and flip.

        ``valid`` is where ``v``'s photo lies in the input (the rest is padding or other photos).
        """
        dim = self.dim
        crop = placement.to_input(v.crop).intersect(valid)
        if v.subject is not None:
            subject = placement.to_input(v.subject).intersect(valid)
            mask = self._subject_mask(v, placement, valid)
            ys, xs = np.nonzero(mask)
            if len(xs):
                mask_box = Box.from_xyxy(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            else:
                mask_box = subject
                mask = box_mask(subject, dim) if not subject.is_empty() else mask
        else:
            # no annotated subject: the model is told "the whole view"; nothing to keep edges away from
            subject = mask_box = valid
            mask = np.zeros((dim, dim), np.float32)
        if self.augment and not subject.is_empty():
            subject = jitter_box(subject, SUBJECT_JITTER, rng)
        channels = [arr, mask[None]] if self.use_subject else [arr]
        image = np.concatenate(channels, axis=0) if len(channels) > 1 else arr
        boxes = {"crop": crop, "valid": valid, "subject": subject, "subject_mask_box": mask_box}
        if self.augment and rng.random() < 0.5:
            image = image[:, :, ::-1]
            boxes = {k: Box.from_xyxy(dim - b.x2, b.y, dim - b.x, b.y2) for k, b in boxes.items()}
        item = {"image": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))}
        for k, b in boxes.items():
            item[k] = torch.tensor(b.xyxy, dtype=torch.float32)
        return item

    def _subject_mask(self, v: Variation, placement: "_Placement", valid: Box) -> np.ndarray:
        """The subject's polygon rasterised in input pixels, inside ``valid`` (its box when no polygon is stored)."""
        dim = self.dim
        poly = self.data.polygons.get(str(v.subject_mask_id)) if v.subject_mask_id is not None else None
        if poly is None or len(poly) < 3:
            return box_mask(placement.to_input(v.subject), dim)
        pts = np.asarray(poly, np.float64) * (placement.sx, placement.sy) + (placement.dx, placement.dy)
        mask = polygon_to_mask(pts, dim, dim)
        vx, vy, vw, vh = (int(c) for c in valid.xywh)
        clipped = np.zeros((dim, dim), np.float32)
        clipped[vy : vy + vh, vx : vx + vw] = mask[vy : vy + vh, vx : vx + vw]
        return clipped


@dataclass(frozen=True)
class _Placement:
    """Canvas pixels -> input pixels: ``x * sx + dx``, ``y * sy + dy``."""

    sx: float
    sy: float
    dx: float
    dy: float

    def to_input(self, box: Box) -> Box:
        return box.scale(self.sx, self.sy).translate(self.dx, self.dy)


def collate(items: list[dict]) -> dict:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}
