"""Stage 2: "uncrop" each professional photo into larger canvases (outpainting).

Each variation shrinks or enlarges the photo so that it covers a random
fraction of a square canvas (``--area``), puts it at a random position and
lets Stable Diffusion 2 inpainting invent everything around it, prompted by
the photo's caption. The photo's place in the canvas is the crop a good
cropper should find again; it is recorded in the file name,
``img<ID>_X_Y_W_H.jpg``.

Each variation's placement and diffusion noise come from
``(seed, photo id, variation index)``, so results do not depend on batching,
sharding or on where a killed run stopped; a rerun only adds the variations
that are missing (``--per-image`` is a target, not an increment).

``backend="classical"`` fills the canvas with OpenCV inpainting (smeared
colours from the photo's border). It is LOW QUALITY and only meant to run the
engine end to end without diffusion weights (tests, laptops); do not train a
cropper on it.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..geometry import Box
from ..io import ImageReadError, image_size, list_images, save_image
from .caption import read_caption
from .runner import Summary, batched, find_photos, open_photo, outpaint_name, parse_outpaint_name, progress
from .runner import remove_stale_temporaries
from .sharding import Shard, default_device

DEFAULT_SD2_INPAINT = "stabilityai/stable-diffusion-2-inpainting"
CANVAS = 512
NEGATIVE_PROMPT = (
    "unrealistic, unnatural, collage, multiple images, ugly, deformed, disfigured, watermark, "
    "signature, picture-frame, image border, photo album, photo gallery"
)
MAX_LONG_SIDE = 0.9  # of the canvas: beyond it, the long side is drawn from LONG_SIDE_RANGE instead
LONG_SIDE_RANGE = (0.5, 0.9)


# ----------------------------------------------------------------------------
# placement
# ----------------------------------------------------------------------------
def variation_rng(seed: int, pid: str, index: int) -> np.random.Generator:
    """The random stream of one variation (independent of batching and of other photos)."""
    key = int.from_bytes(hashlib.sha256(pid.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, key, int(index)])


def sample_placement(
    width: int, height: int, rng: np.random.Generator, area: Sequence[float] = (0.1, 0.5), canvas: int = CANVAS
) -> Box:
    """Where a ``width`` x ``height`` photo goes in the canvas (integer pixels, inside it).

    The photo is scaled to cover a fraction of the canvas area drawn
    uniformly from ``area``; if its long side would then exceed 0.9 of the
    canvas (a wide or tall photo), the long side is drawn from [0.5, 0.9] of
    the canvas instead. The position is uniform over the places it fits.
    """
    frac = rng.uniform(*area)
    long_side = max(width, height)
    scale = math.sqrt(frac * canvas * canvas / (width * height))
    if long_side * scale > MAX_LONG_SIDE * canvas:
        scale = rng.uniform(*LONG_SIDE_RANGE) * canvas / long_side
    w = int(min(canvas, max(1, round(width * scale))))
    h = int(min(canvas, max(1, round(height * scale))))
    x = int(rng.integers(0, canvas - w + 1))
    y = int(rng.integers(0, canvas - h + 1))
    return Box(x, y, w, h)


def make_canvas(photo: Image.Image, box: Box, canvas: int = CANVAS) -> tuple[Image.Image, Image.Image]:
    """The canvas with the resized photo in ``box`` (grey elsewhere) and the mask of what to fill (white)."""
    x, y, w, h = (int(v) for v in box.xywh)
    img = Image.new("RGB", (canvas, canvas), (127, 127, 127))
    img.paste(photo.resize((w, h), Image.LANCZOS), (x, y))
    mask = Image.new("L", (canvas, canvas), 255)
    mask.paste(0, (x, y, x + w, y + h))
    return img, mask


# ----------------------------------------------------------------------------
# fillers
# ----------------------------------------------------------------------------
class DiffusionOutpainter:
    """Stable Diffusion 2 inpainting (fp16 on CUDA); no safety checker."""

    def __init__(
        self,
        model: str = DEFAULT_SD2_INPAINT,
        device: str | None = None,
        steps: int = 50,
        guidance: float = 4.0,
        negative_prompt: str = NEGATIVE_PROMPT,
    ):
        import torch
        from diffusers import StableDiffusionInpaintPipeline

        self.device = default_device(device)
        dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        kwargs = {"torch_dtype": dtype} if dtype != torch.float32 else {}
        with warnings.catch_warnings():  # newer diffusers renamed torch_dtype to dtype; both work
            warnings.simplefilter("ignore", FutureWarning)
            pipe = StableDiffusionInpaintPipeline.from_pretrained(
                model, safety_checker=None, feature_extractor=None, requires_safety_checker=False, **kwargs
            )
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(self.device)
        self.steps, self.guidance, self.negative_prompt = steps, guidance, negative_prompt

    def __call__(self, canvases: list, masks: list, prompts: list[str], seeds: list[int]) -> list[Image.Image]:
        import torch

        size = canvases[0].size[0]
        gen_device = "cpu" if self.device == "mps" else self.device
        generators = [torch.Generator(device=gen_device).manual_seed(int(s)) for s in seeds]
        return self.pipe(
            prompt=list(prompts),
            negative_prompt=[self.negative_prompt] * len(prompts),
            image=list(canvases),
            mask_image=list(masks),
            height=size,
            width=size,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance,
            generator=generators,
        ).images


class ClassicalOutpainter:
    """OpenCV inpainting at low resolution plus grain: LOW QUALITY, for runs without diffusion weights."""

    def __init__(self, work_size: int = 128, grain: float = 4.0):
        self.work_size, self.grain = work_size, grain

    def __call__(self, canvases: list, masks: list, prompts: list[str], seeds: list[int]) -> list[Image.Image]:
        import cv2

        out = []
        for canvas, mask, seed in zip(canvases, masks, seeds):
            size = canvas.size[0]
            small = min(self.work_size, size)
            img = np.asarray(canvas.resize((small, small), Image.BOX))
            m = (np.asarray(mask.resize((small, small), Image.NEAREST)) > 127).astype(np.uint8)
            filled = cv2.inpaint(np.ascontiguousarray(img), m, 3, cv2.INPAINT_TELEA)
            big = cv2.resize(filled, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32)
            big += np.random.default_rng(int(seed) & 0xFFFFFFFF).normal(0.0, self.grain, big.shape)
            keep = np.asarray(mask)[:, :, None] <= 127
            result = np.where(keep, np.asarray(canvas, np.float32), big)
            out.append(Image.fromarray(np.clip(result + 0.5, 0, 255).astype(np.uint8)))
        return out


def make_outpainter(
    backend: str = "diffusion",
    model: str | None = None,
    device: str | None = None,
    steps: int = 50,
    guidance: float = 4.0,
):
    if backend == "diffusion":
        return DiffusionOutpainter(model or DEFAULT_SD2_INPAINT, device=device, steps=steps, guidance=guidance)
    if backend == "classical":
        return ClassicalOutpainter()
    raise ValueError(f"unknown outpainting backend {backend!r} (diffusion, classical)")


# ----------------------------------------------------------------------------
# the stage
# ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Variation:
    pid: str
    index: int
    box: Box
    seed: int

    @property
    def name(self) -> str:
        return outpaint_name(self.pid, self.box)


def existing_variations(out_dir: str | Path) -> dict[str, set[str]]:
    """``{photo id: {file names}}`` of the outpainted images already in ``out_dir``."""
    found: dict[str, set[str]] = defaultdict(set)
    out_dir = Path(out_dir)
    if out_dir.is_dir():
        for path in list_images(out_dir):
            parsed = parse_outpaint_name(path.name)
            if parsed:
                found[parsed[0]].add(path.name)
    return found


def plan_variations(
    pid: str, size: tuple[int, int], have: set[str], per_image: int, seed: int, area: Sequence[float], canvas: int
) -> list[Variation]:
    """The variations that top ``pid`` up to ``per_image`` files.

    Variation indices are walked from 0 and those whose file already exists
    are passed over, so an interrupted and resumed run ends with the same
    files as an uninterrupted one.
    """
    plan, names, index = [], set(have), 0
    while len(names) < per_image and index < per_image * 20:
        rng = variation_rng(seed, pid, index)
        box = sample_placement(size[0], size[1], rng, area, canvas)
        v = Variation(pid, index, box, int(rng.integers(0, 2**63 - 1)))
        if v.name not in names:
            names.add(v.name)
            plan.append(v)
        index += 1
    return plan


def outpaint_folder(
    img_dir: str | Path,
    out_dir: str | Path,
    *,
    captions: str | Path | None = None,
    outpainter=None,
    backend: str = "diffusion",
    model: str | None = None,
    device: str | None = None,
    per_image: int = 5,
    batch_size: int = 8,
    steps: int = 50,
    guidance: float = 4.0,
    area: Sequence[float] = (0.1, 0.5),
    seed: int = 0,
    canvas: int = CANVAS,
    ids: Sequence[str] | None = None,
    shard: Shard = Shard(),
    quiet: bool = False,
) -> Summary:
    """Outpaint this shard's photos of ``img_dir`` until each has ``per_image`` variations in ``out_dir``."""
    out_dir = Path(out_dir)
    if not 0 < area[0] <= area[1] <= 1:
        raise ValueError(f"--area must satisfy 0 < MIN <= MAX <= 1; got {list(area)}")
    if backend == "diffusion" and outpainter is None and captions is None:
        raise ValueError("diffusion outpainting needs --captions CAP_DIR (the prompts)")
    summary = Summary("outpaint", shard)
    photos = find_photos(img_dir, ids, summary if shard.index == 0 else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir, shard)
    have = existing_variations(out_dir)

    todo = summary.pending(shard.select(list(photos)), lambda pid: len(have.get(pid, ())) >= per_image)
    if not todo:
        return summary

    # Plan every missing variation (needs each photo's size: a cheap header read).
    plan: list[Variation] = []
    prompts: dict[str, str] = {}
    for pid in todo:
        try:
            size = image_size(photos[pid])
            if captions is not None:
                prompts[pid] = read_caption(captions, pid)
            elif backend == "diffusion":
                raise ImageReadError("no caption")
            else:
                prompts[pid] = ""
        except (ImageReadError, OSError, ValueError) as e:
            summary.fail(pid, _reason(e))
            continue
        plan.extend(plan_variations(pid, size, have.get(pid, set()), per_image, seed, area, canvas))

    if outpainter is None:
        outpainter = make_outpainter(backend, model, device, steps, guidance)

    failed_pids = {k for k, _ in summary.failed}
    written = 0
    cache: dict[str, Image.Image] = {}
    with progress(len(plan), "outpaint", quiet) as bar:
        for batch in batched(plan, batch_size):
            ready = []
            for v in batch:
                if v.pid in failed_pids:
                    continue
                try:
                    if v.pid not in cache:
                        cache.clear()  # variations of a photo are consecutive in the plan
                        cache[v.pid] = open_photo(photos[v.pid], draft=canvas)
                    ready.append((v, *make_canvas(cache[v.pid], v.box, canvas)))
                except (ImageReadError, OSError, ValueError) as e:
                    summary.fail(v.pid, _reason(e))
                    failed_pids.add(v.pid)
            if ready:
                try:
                    images = outpainter(
                        [c for _, c, _ in ready],
                        [m for _, _, m in ready],
                        [prompts[v.pid] for v, _, _ in ready],
                        [v.seed for v, _, _ in ready],
                    )
                    for (v, _, _), img in zip(ready, images):
                        save_image(img.convert("RGB"), out_dir / v.name, quality=95)
                        written += 1
                except Exception as e:  # one failing batch must not stop the job
                    for v, _, _ in ready:
                        if v.pid not in failed_pids:
                            summary.fail(v.pid, f"{type(e).__name__}: {e}")
                            failed_pids.add(v.pid)
            bar.update(len(batch))
    for pid in todo:
        if pid not in failed_pids:
            summary.ok(pid)
    summary.notes.append(f"{written} outpainted images written to {out_dir}")
    return summary


def _reason(e: Exception) -> str:
    return str(e) if isinstance(e, (ImageReadError, ValueError)) else f"{type(e).__name__}: {e}"
