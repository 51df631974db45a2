"""Finding and loading model checkpoints.

A gencrop model directory is ``config.json`` + ``model.safetensors``
(``save_pretrained``). Also accepted, so that models trained with the original
research code keep working: a directory holding that code's ``config.json``
(``arch``, ``img_dim``, ``use_subject``), ``loss.json`` (per-epoch
``{"epoch", "val", ...}``) and ``model{epoch}.pt``; the epoch with the lowest
finite validation loss is used unless one is named.

The original state-dict names are mapped onto ours by :data:`ORIGINAL_KEY_MAP`
(prefix renames; the anchor and positional-encoding buffers are recomputed).
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import torch

from ..model_files import CONFIG_NAME, DEFAULT_MODEL_DIR, WEIGHTS_NAME, resolve_model_dir  # noqa: F401  (public here)
from .config import GenCropConfig

#: original key prefix -> gencrop key prefix
ORIGINAL_KEY_MAP = {
    "feature.": "backbone.body.",
    "f3_unify.": "fuse8.",
    "f4_unify.": "fuse16.",
    "f5_unify.": "fuse32.",
    "f_down.": "fuse_out.",
    "crop.enc.": "encoder.",
    "crop.crop.": "box_head.",
    "score.net.0.": "scorer.conv.",
    "score.net.3.": "scorer.fc1.",
    "score.net.5.": "scorer.fc2.",
}
#: original buffers that gencrop derives from the config instead of storing
ORIGINAL_DERIVED_BUFFERS = ("crop.pe.pe", "regress.all_anchors")

#: model class for each ``config.variant``
VARIANTS = {
    "gencrop": "gencrop.modeling.gencrop:GenCrop",
    "gencrop-c": "gencrop.modeling.conditioned:GenCropC",
}


def model_class(variant: str):
    if variant not in VARIANTS:
        raise ValueError(f"unknown model variant {variant!r}; known: {sorted(VARIANTS)}")
    module, name = VARIANTS[variant].split(":")
    return getattr(importlib.import_module(module), name)


def convert_original_state_dict(state: dict) -> dict:
    """Rename an original-code state dict to gencrop names (see :data:`ORIGINAL_KEY_MAP`)."""
    out = {}
    for key, value in state.items():
        if key in ORIGINAL_DERIVED_BUFFERS:
            continue
        for old, new in ORIGINAL_KEY_MAP.items():
            if key.startswith(old):
                out[new + key[len(old) :]] = value
                break
        else:
            raise KeyError(f"unexpected key in original checkpoint: {key}")
    return out


def original_config(d: dict) -> GenCropConfig:
    """Config of the original code -> GenCropConfig (original conventions kept)."""
    return GenCropConfig(
        arch=d.get("arch", "resnet50"),
        image_size=int(d.get("img_dim", d.get("dim", 256))),
        in_channels=4 if d.get("use_subject") else 3,
        transpose_anchors=True,
    )


def best_epoch(loss_file: Path) -> int:
    """Epoch with the lowest finite validation loss in an original ``loss.json``."""
    losses = json.loads(Path(loss_file).read_text())

    def val(entry):
        v = entry.get("val", entry.get("val_loss"))
        return v if v is not None and math.isfinite(v) else math.inf

    finite = [e for e in losses if val(e) < math.inf]
    if not finite:
        raise ValueError(f"{loss_file}: no epoch has a finite validation loss")
    return int(min(finite, key=val)["epoch"])


def is_original_layout(directory: Path) -> bool:
    return (
        (directory / CONFIG_NAME).exists()
        and any(directory.glob("model*.pt"))
        and not (directory / WEIGHTS_NAME).exists()
    )


def locate_model(path: str | Path | None, epoch: int | None = None) -> tuple[GenCropConfig, Path]:
    """The config and the weights file of a model, without reading the weights (a cheap check)."""
    directory = resolve_model_dir(path)
    if is_original_layout(directory):
        config = original_config(json.loads((directory / CONFIG_NAME).read_text()))
        if epoch is None:
            epoch = best_epoch(directory / "loss.json")
        weights = directory / f"model{epoch}.pt"
        if not weights.exists():
            raise FileNotFoundError(f"{weights}: no checkpoint for epoch {epoch}")
        return config, weights
    if epoch is not None:
        sub = directory / f"epoch{epoch}"
        if not (sub / WEIGHTS_NAME).exists():
            raise FileNotFoundError(f"{sub}: no checkpoint for epoch {epoch}")
        directory = sub
    if not (directory / CONFIG_NAME).exists():
        raise FileNotFoundError(f"{directory}: no {CONFIG_NAME} (not a gencrop model directory)")
    if not (directory / WEIGHTS_NAME).exists():
        raise FileNotFoundError(f"{directory}: no {WEIGHTS_NAME} (not a gencrop model directory)")
    return GenCropConfig.from_dict(json.loads((directory / CONFIG_NAME).read_text())), directory / WEIGHTS_NAME


def load_model(cls, path: str | Path | None, epoch: int | None = None):
    """Build the model described by a directory and load its weights (float32, CPU)."""
    from safetensors.torch import load_file

    config, weights = locate_model(path, epoch)
    if weights.suffix == ".pt":  # the original code's checkpoint
        state = convert_original_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    else:
        state = load_file(str(weights))
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    target = model_class(config.variant) if cls is None or config.variant != "gencrop" else cls
    model = target(config)
    model.load_state_dict(state)
    return model
