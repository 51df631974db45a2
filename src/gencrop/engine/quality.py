"""Stage 3: reject bad outpaintings (collages, frames, smeared borders) with a small classifier.

Training data is a folder with ``good/`` and ``bad/`` sub-folders labelled by
a person. Bad examples are the rare class, so the loss weights them 10x, with
label smoothing 0.1 (the labels are quick judgements, not ground truth) and a
cosine learning-rate schedule; precision and recall of "bad" on a held-out
part tell whether the filter can be trusted.

Inference writes the names whose badness (probability of "bad") is above the
threshold to ``bad.json``. Scores are kept in ``bad.scores.json`` beside it,
so a rerun or a later ``view`` does not need the network again; work in
progress is saved in small part files and merged, as in ``segment``.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.letterbox import letterbox_image
from ..io import ImageReadError, json_safe, list_images, load_image, read_json, save_image, write_json
from .runner import Summary, find_images, progress, remove_stale_temporaries, run_batches
from .sharding import Shard, default_device

CLASSES = ("good", "bad")
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class QualityConfig:
    arch: str = "tf_efficientnet_lite0"
    image_size: int = 128
    in_channels: int = 3
    classes: tuple = CLASSES
    threshold: float = 0.5
    metrics: dict = field(default_factory=dict)


def _net_class():
    import torch
    from torch import nn

    from ..modeling.backbone import Backbone

    class QualityNet(nn.Module):
        """A timm backbone, global average pooling and a 2-way linear head (good, bad)."""

        def __init__(self, config: QualityConfig):
            super().__init__()
            self.config = config
            self.backbone = Backbone(config.arch, config.in_channels)
            self.dropout = nn.Dropout(0.2)
            self.head = nn.Linear(self.backbone.channels[-1], len(config.classes))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.dropout(self.backbone(x)[-1].mean((2, 3))))

    return QualityNet


def build_model(config: QualityConfig):
    return _net_class()(config)


def save_model(model, out_dir: str | Path) -> None:
    from safetensors.torch import save_file

    from ..io import atomic_path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / WEIGHTS_FILE) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_json(out_dir / CONFIG_FILE, asdict(model.config))


def load_model(model_dir: str | Path, device: str = "cpu"):
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    if not (model_dir / CONFIG_FILE).exists() or not (model_dir / WEIGHTS_FILE).exists():
        raise FileNotFoundError(
            f"{model_dir}: not a quality model (needs {CONFIG_FILE} and {WEIGHTS_FILE}; "
            f"train one with `gencrop quality train`)"
        )
    raw = read_json(model_dir / CONFIG_FILE)
    config = QualityConfig(**{k: v for k, v in raw.items() if k in QualityConfig.__dataclass_fields__})
    config.classes = tuple(config.classes)
    model = build_model(config)
    model.load_state_dict(load_file(str(model_dir / WEIGHTS_FILE)))
    return model.to(device).eval()


def prepare(path: str | Path, size: int) -> np.ndarray:
    """A photo as a letterboxed, normalised ``3 x size x size`` float32 array."""
    img, full = load_image(path, min_side=size)
    arr, _ = letterbox_image(img, size, full)
    return arr


# ----------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------
def labelled_files(data_dir: str | Path) -> list[tuple[Path, int]]:
    """``(path, label)`` for ``good/`` (0) and ``bad/`` (1) images."""
    data_dir = Path(data_dir)
    items = []
    for label, name in enumerate(CLASSES):
        folder = data_dir / name
        if not folder.is_dir():
            raise FileNotFoundError(f"{data_dir}: needs sub-folders good/ and bad/ ({folder} missing)")
        items += [(p, label) for p in list_images(folder)]
    return items


def split_held_out(items: Sequence[tuple[Path, int]], fraction: float, seed: int):
    """Stratified split: ``fraction`` of each class (at least one when it has two or more) is held out."""
    rng = random.Random(seed)
    train, held = [], []
    for label in range(len(CLASSES)):
        group = sorted((it for it in items if it[1] == label), key=lambda it: it[0].name)
        rng.shuffle(group)
        k = int(round(fraction * len(group)))
        if fraction > 0 and len(group) >= 2:
            k = min(max(k, 1), len(group) - 1)
        held += group[:k]
        train += group[k:]
    return train, held


def precision_recall(scores: Sequence[float], labels: Sequence[int], threshold: float = 0.5) -> dict:
    """Precision and recall of the "bad" class at ``threshold``."""
    pred = np.asarray(scores) > threshold
    true = np.asarray(labels) == 1
    tp, fp, fn = int((pred & true).sum()), int((pred & ~true).sum()), int((~pred & true).sum())
    return {
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "accuracy": float((pred == true).mean()) if len(pred) else float("nan"),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "n": int(len(pred)),
    }


def train_quality(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    arch: str = "tf_efficientnet_lite0",
    pretrained: str = "auto",
    image_size: int = 128,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 3e-4,
    weight_decay: float = 1e-4,
    bad_weight: float = 10.0,
    label_smoothing: float = 0.1,
    held_out: float = 0.2,
    seed: int = 0,
    device: str | None = None,
    quiet: bool = False,
) -> dict:
    """Train the good/bad classifier, save it to ``out_dir``; returns the held-out metrics."""
    import torch
    from torch import nn

    from ..modeling.backbone import load_backbone_weights

    device = default_device(device)
    torch.manual_seed(seed)
    items = labelled_files(data_dir)
    counts = [sum(1 for _, y in items if y == c) for c in range(len(CLASSES))]
    if min(counts) == 0:
        raise ValueError(f"{data_dir}: need images in both good/ and bad/ (found {counts[0]} good, {counts[1]} bad)")
    train, held = split_held_out(items, held_out, seed)

    # Decode each photo once; unreadable ones are reported and left out.
    cache: dict[Path, np.ndarray] = {}
    skipped = []
    for path, _ in items:
        try:
            cache[path] = prepare(path, image_size).astype(np.float16)
        except ImageReadError as e:
            skipped.append(f"{path.name}: {e}")
    train = [it for it in train if it[0] in cache]
    held = [it for it in held if it[0] in cache]

    config = QualityConfig(arch=arch, image_size=image_size)
    model = build_model(config)
    init = load_backbone_weights(model, pretrained)
    model.to(device)
    loss_fn = nn.CrossEntropyLoss(
        weight=torch.tensor([1.0, bad_weight], device=device), label_smoothing=label_smoothing
    )
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = max(1, math.ceil(len(train) / batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    rng = random.Random(seed)

    def batch_tensor(batch, augment: bool):
        x = torch.from_numpy(np.stack([cache[p] for p, _ in batch]).astype(np.float32))
        if augment:
            flip = torch.rand(len(batch)) < 0.5
            x[flip] = x[flip].flip(-1)
        return x.to(device), torch.tensor([y for _, y in batch], device=device)

    history = []
    with progress(epochs * steps_per_epoch, "quality train", quiet, unit="step") as bar:
        for epoch in range(epochs):
            model.train()
            order = list(train)
            rng.shuffle(order)
            total, n = 0.0, 0
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                if len(batch) < 2 and len(order) > 1:  # batch norm needs two samples
                    bar.update(1)
                    continue
                x, y = batch_tensor(batch, augment=True)
                loss = loss_fn(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(batch)
                n += len(batch)
                bar.update(1)
                bar.set_postfix(loss=f"{total / max(n, 1):.4f}")
            history.append(round(total / max(n, 1), 5))

    metrics = {
        "train_loss": history,
        "init": init,
        "train_images": len(train),
        "held_out_images": len(held),
        "skipped": skipped,
    }
    if held:
        scores = badness(model, [cache[p] for p, _ in held], device, batch_size)
        metrics["held_out"] = precision_recall(scores, [y for _, y in held], config.threshold)
    config.metrics = json_safe(metrics)
    save_model(model.cpu(), out_dir)
    return config.metrics


def badness(model, arrays: Sequence[np.ndarray], device: str, batch_size: int = 64) -> list[float]:
    """Probability of "bad" for each prepared array."""
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(arrays), batch_size):
            x = torch.from_numpy(np.stack(arrays[start : start + batch_size]).astype(np.float32)).to(device)
            out += model(x).softmax(-1)[:, 1].float().cpu().tolist()
    return out


# ----------------------------------------------------------------------------
# inference stage
# ----------------------------------------------------------------------------
def scores_path(out: str | Path) -> Path:
    """``bad.json`` -> ``bad.scores.json`` (every image's badness)."""
    out = Path(out)
    return out.with_name(
        out.name[: -len(".json")] + ".scores.json" if out.name.endswith(".json") else out.name + ".scores.json"
    )


def _parts_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.parts"


def read_verdicts(path: str | Path) -> dict[str, tuple[bool, float | None]]:
    """``{file name: (is bad, badness or None)}`` from ``bad.json`` and, when present, its scores."""
    path = Path(path)
    sp = scores_path(path)
    if sp.exists():
        data = read_json(sp)
        thr = data.get("threshold", 0.5)
        return {k: (v > thr, v) for k, v in data["scores"].items()}
    return {name: (True, None) for name in read_json(path)}


def _model_id(model_dir: Path) -> str:
    """A fingerprint of the weights, so that scores of another model are never mixed in."""
    import hashlib

    w = model_dir / WEIGHTS_FILE
    if not w.exists():
        raise FileNotFoundError(
            f"{model_dir}: not a quality model (no {WEIGHTS_FILE}; train one with `gencrop quality train`)"
        )
    digest = hashlib.sha256()
    with open(w, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()[:16]}"


def quality_folder(
    img_dir: str | Path,
    model_dir: str | Path,
    out: str | Path,
    *,
    sheet: str | Path | None = None,
    threshold: float | None = None,
    ids: Sequence[str] | None = None,
    shard: Shard = Shard(),
    batch_size: int = 32,
    device: str | None = None,
    flush_every: int = 500,
    sheet_limit: int = 200,
    quiet: bool = False,
) -> Summary:
    """Score this shard's images of ``img_dir``; when all are scored, write ``out`` (and ``sheet``)."""
    img_dir, model_dir, out = Path(img_dir), Path(model_dir), Path(out)
    summary = Summary("quality", shard)
    images = find_images(img_dir, ids)
    names = {p.name: p for p in images.values()}
    sp, parts = scores_path(out), _parts_dir(out)
    model_id = _model_id(model_dir)
    remove_stale_temporaries(parts, shard)

    scores: dict[str, float] = {}
    if sp.exists():
        data = read_json(sp)
        if data.get("model") != model_id:
            raise ValueError(
                f"{sp} holds scores of another model ({data.get('model')}); remove it or write to another -o"
            )
        scores.update(data["scores"])
    failed: dict[str, str] = {}
    for pf in sorted(parts.glob("*.json")) if parts.is_dir() else []:
        try:
            part = read_json(pf)
        except FileNotFoundError:  # merged and removed by another process meanwhile
            continue
        scores.update(part["scores"])
        failed.update(part["failed"])

    todo = summary.pending(shard.select(list(names)), lambda name: name in scores)

    if todo:
        dev = default_device(device)
        model = load_model(model_dir, dev)
        size = model.config.image_size
        for start in range(0, len(todo), flush_every):
            chunk = todo[start : start + flush_every]
            got: dict[str, float] = {}
            before = len(summary.failed)
            run_batches(
                chunk,
                load=lambda n: prepare(names[n], size),
                process=lambda arrays: badness(model, arrays, dev, batch_size),
                save=lambda n, s: got.__setitem__(n, round(float(s), 5)),
                summary=summary,
                batch_size=batch_size,
                desc="quality",
                quiet=quiet,
            )
            new_failed = dict(summary.failed[before:])
            write_json(
                parts / f"{shard.tag}-{uuid.uuid4().hex[:12]}.json", {"scores": got, "failed": new_failed}, indent=None
            )
            scores.update(got)
            failed.update(new_failed)

    # Merge when every image is scored or has failed; other shards may still be running.
    if not set(names) <= set(scores) | set(failed):
        return summary
    if threshold is None:
        threshold = (
            float(read_json(model_dir / CONFIG_FILE).get("threshold", 0.5))
            if (model_dir / CONFIG_FILE).exists()
            else 0.5
        )
    final = {n: scores[n] for n in sorted(scores)}
    new_scores = {"model": model_id, "threshold": threshold, "scores": final}
    bad = sorted((n for n, s in final.items() if s > threshold), key=lambda n: -final[n])
    _write_if_changed(sp, new_scores)
    _write_if_changed(out, bad)
    for pf in parts.glob("*.json") if parts.is_dir() else []:
        pf.unlink(missing_ok=True)
    if parts.is_dir():
        try:
            parts.rmdir()
        except OSError:
            pass
    summary.notes.append(f"{len(bad)} of {len(final)} images judged bad (badness > {threshold:g}) -> {out}")
    if sheet is not None and (todo or not Path(sheet).exists()):
        ranked = sorted(((n, s) for n, s in final.items() if n in names), key=lambda t: -t[1])
        draw_quality_sheet([(names[n], s) for n, s in ranked[:sheet_limit]], threshold, sheet)
        summary.notes.append(f"contact sheet of the {min(len(ranked), sheet_limit)} worst images -> {sheet}")
    return summary


def _write_if_changed(path: Path, obj) -> None:
    """Rewrite only when the content changes (a rerun leaves files, and their times, alone)."""
    if path.exists():
        try:
            if read_json(path) == json.loads(json.dumps(obj)):
                return
        except ValueError:
            pass
    write_json(path, obj)


def draw_quality_sheet(
    ranked: Sequence[tuple[Path, float]], threshold: float, out: str | Path, thumb: int = 160, columns: int = 8
) -> None:
    """Contact sheet of images sorted by badness (worst first), score under each; red = judged bad."""
    from PIL import Image

    from .sheets import contact_sheet

    tiles = []
    for path, score in ranked:
        try:
            img, _ = load_image(path, min_side=thumb)
        except ImageReadError:
            img = Image.new("RGB", (thumb, thumb))
        colour = (255, 80, 80) if score > threshold else (120, 255, 120)
        tiles.append((img, [f"{score:.3f}", path.name[:28]], colour))
    if not tiles:
        tiles = [(Image.new("RGB", (thumb, thumb)), ["no images"], (200, 200, 200))]
    save_image(contact_sheet(tiles, thumb=thumb, columns=columns), out)
