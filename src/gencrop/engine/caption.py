"""Stage 1: a caption for every photo (the outpainting prompt), ``CAP_DIR/blip<ID>.txt``.

BLIP-2 (``Salesforce/blip2-opt-6.7b`` by default) describes the photo. The
``labels`` captioner instead lists the classes a detector finds ("a photo of
two people and a dog"), for machines without BLIP-2 weights. Captions are
stored as ASCII because the text encoders' tokenizers and the downstream
tools expect plain text.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from pathlib import Path
from typing import Callable, Sequence

from ..io import ImageReadError, atomic_open
from .runner import Summary, find_photos, open_photo, run_batches
from .sharding import Shard, default_device

DEFAULT_BLIP2 = "Salesforce/blip2-opt-6.7b"
CAPTION_PREFIX = "blip"

Captioner = Callable[[list], list[str]]


def caption_path(cap_dir: str | Path, pid: str) -> Path:
    return Path(cap_dir) / f"{CAPTION_PREFIX}{pid}.txt"


def read_caption(cap_dir: str | Path, pid: str) -> str:
    """The stored caption of photo ``pid`` (``ImageReadError`` with a reason when missing)."""
    path = caption_path(cap_dir, pid)
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except FileNotFoundError:
        raise ImageReadError(f"no caption {path.name} in {path.parent}") from None


def to_ascii(text: str) -> str:
    """Fold accents (``café`` -> ``cafe``), drop what has no ASCII form, normalise spaces."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join("".join(ch if ch.isprintable() else " " for ch in folded).split())


# ----------------------------------------------------------------------------
# captioners
# ----------------------------------------------------------------------------
class Blip2Captioner:
    """BLIP-2 image captioning (fp16 on CUDA, fp32 elsewhere)."""

    def __init__(
        self,
        model: str = DEFAULT_BLIP2,
        device: str | None = None,
        max_new_tokens: int = 30,
        min_new_tokens: int | None = None,
        num_beams: int = 1,
    ):
        import torch
        from transformers import Blip2ForConditionalGeneration, Blip2Processor

        self.device = default_device(device)
        self.dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        self.processor = Blip2Processor.from_pretrained(model)
        kwargs = {}
        if self.dtype != torch.float32:  # transformers >= 4.56 calls it dtype, older ones torch_dtype
            kwargs["dtype" if _transformers_at_least("4.56") else "torch_dtype"] = self.dtype
        self.model = Blip2ForConditionalGeneration.from_pretrained(model, **kwargs).to(self.device).eval()
        self.generate_kwargs = {"max_new_tokens": max_new_tokens, "num_beams": num_beams}
        if min_new_tokens:
            self.generate_kwargs["min_new_tokens"] = min_new_tokens

    def __call__(self, images: list) -> list[str]:
        import torch

        inputs = self.processor(images=images, return_tensors="pt")
        inputs = {
            k: (v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device))
            for k, v in inputs.items()
        }
        with torch.inference_mode():
            out = self.model.generate(**inputs, **self.generate_kwargs)
        if "input_ids" in inputs and out.shape[1] > inputs["input_ids"].shape[1]:
            out = out[:, inputs["input_ids"].shape[1] :]  # generate returns the prompt too
        return [t.strip() for t in self.processor.batch_decode(out, skip_special_tokens=True)]


def _transformers_at_least(version: str) -> bool:
    import transformers
    from packaging.version import Version

    return Version(transformers.__version__) >= Version(version)


_NUMBERS = ["no", "a", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_PLURALS = {
    "person": "people",
    "mouse": "mice",
    "sheep": "sheep",
    "skis": "skis",
    "scissors": "scissors",
    "bus": "buses",
    "couch": "couches",
    "bench": "benches",
    "knife": "knives",
    "wine glass": "wine glasses",
    "sandwich": "sandwiches",
    "toothbrush": "toothbrushes",
    "giraffe": "giraffes",
}


def labels_caption(classes_by_score: Sequence[str]) -> str:
    """``["dog", "person", "person"]`` -> ``"a photo of a dog and two people"`` (order of first appearance)."""
    counts = Counter(classes_by_score)
    if not counts:
        return "a photo"
    parts = []
    for name in dict.fromkeys(classes_by_score):
        n = counts[name]
        if n == 1:
            article = "an" if name[0] in "aeiou" else "a"
            parts.append(f"{article} {name}")
        else:
            plural = _PLURALS.get(name, name + "s")
            parts.append(f"{_NUMBERS[n] if n < len(_NUMBERS) else n} {plural}")
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"a photo of {listed}"


class LabelCaptioner:
    """A caption made of the class names a segmenter finds above ``min_score``."""

    def __init__(self, segmenter: Callable, min_score: float = 0.4, max_classes: int = 4):
        self.segmenter = segmenter
        self.min_score = min_score
        self.max_classes = max_classes

    def __call__(self, images: list) -> list[str]:
        captions = []
        for dets in self.segmenter(images):
            dets = sorted((d for d in dets if d.score >= self.min_score), key=lambda d: -d.score)
            names = [d.cls for d in dets]
            keep = list(dict.fromkeys(names))[: self.max_classes]
            captions.append(labels_caption([n for n in names if n in keep]))
        return captions


def make_captioner(
    kind: str = "blip2", model: str | None = None, device: str | None = None, segment_backend: str = "yolov7"
) -> Captioner:
    """``blip2`` (``model`` = any BLIP-2 id or folder) or ``labels`` (``model`` = detector weights)."""
    if kind == "blip2":
        return Blip2Captioner(model or DEFAULT_BLIP2, device=device)
    if kind == "labels":
        from .segment import make_segmenter

        return LabelCaptioner(make_segmenter(segment_backend, model, device))
    raise ValueError(f"unknown captioner {kind!r} (blip2, labels)")


# ----------------------------------------------------------------------------
# the stage
# ----------------------------------------------------------------------------
def caption_folder(
    img_dir: str | Path,
    out_dir: str | Path,
    *,
    captioner: Captioner | None = None,
    kind: str = "blip2",
    model: str | None = None,
    device: str | None = None,
    segment_backend: str = "yolov7",
    ids: Sequence[str] | None = None,
    shard: Shard = Shard(),
    batch_size: int = 8,
    quiet: bool = False,
) -> Summary:
    """Caption every ``img<ID>`` photo of ``img_dir`` that has no ``blip<ID>.txt`` yet (this shard's share)."""
    out_dir = Path(out_dir)
    summary = Summary("caption", shard)
    photos = find_photos(img_dir, ids, summary if shard.index == 0 else None)  # report misnamed files once
    todo = summary.pending(shard.select(list(photos)), lambda pid: caption_path(out_dir, pid).exists())
    if not todo:
        return summary
    if captioner is None:
        captioner = make_captioner(kind, model, device, segment_backend)
    out_dir.mkdir(parents=True, exist_ok=True)

    def save(pid: str, text: str) -> None:
        text = to_ascii(text)
        if not text:
            raise ValueError("the captioner returned no text")
        with atomic_open(caption_path(out_dir, pid), "w", encoding="ascii") as f:
            f.write(text)

    run_batches(
        todo,
        load=lambda pid: open_photo(photos[pid]),
        process=captioner,
        save=save,
        summary=summary,
        batch_size=batch_size,
        desc="caption",
        quiet=quiet,
    )
    return summary
