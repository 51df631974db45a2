"""Loading a network: the runtime factory, above the runtimes it chooses between.

:func:`load_network` reads a model directory, an exported ``.onnx`` file or the
bundled model, and returns a :class:`~gencrop.runtime.base.Network` on
onnxruntime or PyTorch; an ONNX export made from other weights than its
directory's is never used (:func:`onnx_state`).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from ..model_files import DEFAULT_MODEL_DIR, ONNX_NAME, resolve_model_dir, weights_digest
from .base import ONNX_HINT, TORCH_HINT, MissingExtra, Network

__all__ = ["RUNTIMES", "load_network", "onnx_state"]

RUNTIMES = ("auto", "onnx", "torch")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def onnx_state(directory: Path) -> str:
    """``"fresh"``, ``"stale"`` (made from other weights), or ``"missing"`` for a model directory's ONNX file."""
    path = directory / ONNX_NAME
    if not path.is_file():
        return "missing"
    from .onnx_network import read_metadata

    return _freshness(directory, read_metadata(path).get("gencrop_digest"))


def _freshness(directory: Path, made_from: str | None) -> str:
    current = weights_digest(directory)
    # A directory that ships only the ONNX file (no safetensors) has nothing to be stale against.
    return "fresh" if current is None or made_from == current else "stale"


def load_network(
    path: str | Path | None = None,
    *,
    runtime: str = "auto",
    device=None,
    epoch: int | None = None,
    spin_wait: bool = True,
) -> Network:
    """Load a model directory (``None``: the bundled model), hub id or ``.onnx`` file on a runtime.

    ``runtime``: ``"onnx"``, ``"torch"``, or ``"auto"``: onnxruntime when the
    model has an up-to-date ``model.onnx`` and no GPU device or epoch is asked
    for, else PyTorch. Missing packages raise :class:`MissingExtra` naming
    what to install; a stale ``model.onnx`` is never used.

    ``spin_wait``: onnxruntime's worker threads spin between the steps of a
    pass (the lowest latency for one caller, but the spinning takes the CPU
    from any other thread); a server that decodes photos beside the model
    turns it off. PyTorch ignores it.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}; got {runtime!r}")
    if path is not None and str(path).endswith(".onnx"):
        if runtime == "torch":
            raise ValueError(f"{path} is an ONNX file: it runs on the onnx runtime, not torch")
        if epoch is not None:
            raise ValueError("--epoch picks a PyTorch checkpoint, not part of an ONNX file")
        if not Path(path).is_file():
            raise FileNotFoundError(f"no such ONNX file: {path}")
        return _onnx(Path(path), device, spin_wait)
    directory = resolve_model_dir(path)
    has_onnx = (directory / ONNX_NAME).is_file()
    if runtime == "onnx":
        if epoch is not None:
            raise ValueError(
                "--epoch picks a PyTorch checkpoint; export that epoch "
                "(gencrop export DIR --epoch N -o FILE.onnx) and load the file"
            )
        if not has_onnx:
            raise FileNotFoundError(_onnx_problem(directory, "missing"))
        net = _onnx(directory / ONNX_NAME, device, spin_wait)
        if _freshness(directory, net.digest) != "fresh":
            raise ValueError(_onnx_problem(directory, "stale"))
        return net
    state = "missing"
    if runtime == "auto" and has_onnx:
        if (device is None or str(device) == "cpu") and epoch is None and _installed("onnxruntime"):
            net = _onnx(directory / ONNX_NAME, device, spin_wait)
            state = _freshness(directory, net.digest)
            if state == "fresh":
                return net
            print(f"gencrop: warning: {_onnx_problem(directory, state)}; using PyTorch", file=sys.stderr)
    if not _installed("torch"):
        if runtime == "torch" or state == "fresh":
            raise MissingExtra(f"the PyTorch runtime is not installed: {TORCH_HINT}")
        why = (
            "onnxruntime is not installed"
            if has_onnx and not _installed("onnxruntime")
            else _onnx_problem(directory, state)
            if epoch is None and state != "fresh"
            else "--epoch needs the PyTorch runtime"
        )
        raise MissingExtra(f"{why}; and the PyTorch runtime is not installed: {TORCH_HINT}")
    from .torch_network import TorchNetwork

    return TorchNetwork.from_directory(directory, epoch=epoch, device=device)


def _onnx_problem(directory: Path, state: str) -> str:
    bundled = directory.resolve() == DEFAULT_MODEL_DIR
    where = "the bundled model" if bundled else str(directory)
    fix = f"gencrop export {'default' if bundled else directory}"
    if state == "stale":
        return f"{directory / ONNX_NAME} was exported from other weights than {where}'s; re-export it: {fix}"
    return f"{where} has no {ONNX_NAME}; export one: {fix}"


def _onnx(path: Path, device, spin_wait: bool = True) -> Network:
    if not _installed("onnxruntime"):
        raise MissingExtra(f"the onnx runtime needs onnxruntime: {ONNX_HINT}")
    from .onnx_network import OnnxNetwork

    return OnnxNetwork(path, device=device, spin_wait=spin_wait)
