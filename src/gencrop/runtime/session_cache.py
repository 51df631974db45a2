"""onnxruntime sessions whose optimised graph is kept on disk between processes.

Building a session optimises the graph first: 90-160 ms for the bundled network or U²-Netp on a
2-core CPU, more than running either on a photo. ``gencrop crop photo.jpg`` builds its sessions
once per process, so a one-photo run paid this every time. The first process writes the optimised
graph to the cache; later ones load it with optimisation off (about 25 ms) and run it exactly as fast.

The optimised graph may use kernels and memory layouts of this CPU, so the cache key holds
onnxruntime's version, the machine, the CPU's feature flags and the optimisation level besides the
model file's path, size and modification time. Only CPU sessions are cached; each model keeps its
``KEEP_PER_MODEL`` most recently used entries (a reinstall or another environment makes a new one). The cache is
``$GENCROP_CACHE/onnxruntime`` (default ``$XDG_CACHE_HOME/gencrop``, else ``~/.cache/gencrop``);
``GENCROP_CACHE=off`` turns it off. A cache that cannot be written, or an entry that no longer
loads, only costs the optimisation: the session is then built from the model file as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
from functools import lru_cache
from pathlib import Path

__all__ = ["cache_dir", "cached_session"]

CPU = ["CPUExecutionProvider"]
KEEP_PER_MODEL = 4  # entries of one model file's name kept (one per environment or install in use)


def cache_dir() -> Path | None:
    """Where optimised graphs are kept (None: caching is off)."""
    root = os.environ.get("GENCROP_CACHE")
    if root is not None and root.strip().lower() in ("", "0", "off", "false", "no"):
        return None
    if root is None:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(base) / "gencrop")
    return Path(root) / "onnxruntime"


@lru_cache(maxsize=1)
def _cpu_fingerprint() -> str:
    """The CPU's architecture and feature flags (what an optimised graph's kernels may depend on)."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:  # not Linux: the processor's name stands in
        flags = platform.processor()
    return f"{platform.machine()}|{flags.strip()}"


def _entry(path: Path, level) -> Path | None:
    where = cache_dir()
    if where is None:
        return None
    import onnxruntime as ort

    st = path.stat()
    model = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    key = "|".join([ort.__version__, _cpu_fingerprint(), str(int(level)), model])
    return where / f"{path.stem}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.onnx"


def _last_used(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:  # removed meanwhile by another process
        return 0


def _prune(entry: Path) -> None:
    """Remove all but the ``KEEP_PER_MODEL`` most recently used entries of ``entry``'s model."""
    stem = entry.stem.rsplit("-", 1)[0]
    same = [p for p in entry.parent.glob(f"{stem}-*.onnx") if p.stem.rsplit("-", 1)[0] == stem]
    same.sort(key=_last_used, reverse=True)
    for old in same[KEEP_PER_MODEL:]:
        old.unlink(missing_ok=True)


def cached_session(path: str | os.PathLike, options, providers: list[str] | None = None):
    """``onnxruntime.InferenceSession(path, options, providers)``, its optimised graph kept in the cache.

    ``options`` is used for this session only (its optimisation settings are changed)."""
    import onnxruntime as ort

    path = Path(path)
    providers = list(providers or CPU)
    level = options.graph_optimization_level
    entry = None
    if providers == CPU and level != ort.GraphOptimizationLevel.ORT_DISABLE_ALL:
        try:
            entry = _entry(path, level)
        except OSError:
            entry = None
    if entry is None:
        return ort.InferenceSession(str(path), options, providers=providers)
    if entry.is_file():
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            session = ort.InferenceSession(str(entry), options, providers=providers)
            with contextlib.suppress(OSError):
                os.utime(entry)  # used now: pruning keeps the entries in use
            return session
        except Exception:  # noqa: BLE001 - a damaged or foreign entry: rebuilt below
            with contextlib.suppress(OSError):
                entry.unlink(missing_ok=True)
            options.graph_optimization_level = level
    import tempfile  # only when an entry is written

    tmp = None
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{entry.stem}-", suffix=".onnx", dir=entry.parent)
        os.close(fd)
        options.optimized_model_filepath = tmp
    except OSError:  # a read-only home: no cache, same session
        tmp = None
    session = ort.InferenceSession(str(path), options, providers=providers)
    if tmp is not None:
        with contextlib.suppress(OSError):
            if os.path.getsize(tmp) > 0:
                os.replace(tmp, entry)  # atomic: a process reading the cache never sees half a file
                _prune(entry)
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # left only when it was not moved into place
    return session
