"""Where a model's files are, and the digest that ties an ONNX export to its weights.

A model directory holds ``config.json`` + ``model.safetensors`` (the
PyTorch runtime) and optionally ``model.onnx`` (the onnxruntime runtime,
written by ``gencrop export``). The export stores :func:`weights_digest` of
the files it was made from, so an ONNX file left behind by a re-trained
model is recognised as stale instead of silently giving other crops.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ONNX_NAME = "model.onnx"

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "weights" / "default"


def resolve_model_dir(path: str | Path | None) -> Path:
    """A local directory, the bundled default (``None``), or a Hugging Face hub id."""
    if path is None:
        if not ((DEFAULT_MODEL_DIR / WEIGHTS_NAME).exists() or (DEFAULT_MODEL_DIR / ONNX_NAME).exists()):
            raise FileNotFoundError("no bundled default model in this installation; pass a model directory")
        return DEFAULT_MODEL_DIR
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise NotADirectoryError(f"{p}: a model is a directory (config.json + model.safetensors)")
        return p
    if re.fullmatch(r"[\w.-]+/[\w.-]+", str(path)) and not str(path).startswith("."):
        try:
            from huggingface_hub import snapshot_download
        except ImportError:
            raise FileNotFoundError(
                f"model directory not found: {p} (a hub id needs `pip install huggingface_hub`)"
            ) from None
        return Path(snapshot_download(str(path), allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, ONNX_NAME]))
    raise FileNotFoundError(f"model directory not found: {p}")


def weights_digest(directory: str | Path) -> str | None:
    """SHA-256 over ``config.json`` and ``model.safetensors`` (None when either is missing)."""
    directory = Path(directory)
    h = hashlib.sha256()
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        path = directory / name
        if not path.is_file():
            return None
        h.update(name.encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
