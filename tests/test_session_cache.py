"""Optimised onnxruntime graphs kept on disk: written once, read back, and never a reason to fail."""

from __future__ import annotations

import os

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

from gencrop.runtime.session_cache import KEEP_PER_MODEL, cache_dir, cached_session  # noqa: E402
from gencrop.subjects.base import model_path  # noqa: E402
from gencrop.subjects.faces import MODEL_FILE  # noqa: E402

MODEL = model_path(MODEL_FILE)  # YuNet, 0.23 MB: builds in milliseconds


def _options():
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return opts


def _run(session) -> list[np.ndarray]:
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 64, 96)).astype(np.float32)
    return session.run(None, {session.get_inputs()[0].name: x})


def _entries(root):
    return sorted((root / "onnxruntime").glob("*.onnx")) if (root / "onnxruntime").is_dir() else []


def test_the_first_session_writes_the_graph_and_the_next_reads_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCROP_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path / "onnxruntime"
    reference = _run(ort.InferenceSession(str(MODEL), _options(), providers=["CPUExecutionProvider"]))
    first = cached_session(MODEL, _options())
    (entry,) = _entries(tmp_path)
    assert entry.name.startswith(MODEL.stem) and entry.stat().st_size > 0
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".")]  # no temporary file left

    opened = []
    real = ort.InferenceSession
    monkeypatch.setattr(ort, "InferenceSession", lambda path, *a, **k: opened.append(path) or real(path, *a, **k))
    second = cached_session(MODEL, _options())
    assert opened == [str(entry)]  # read from the cache, not optimised again
    for a, b, c in zip(reference, _run(first), _run(second)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(c, a, rtol=1e-4, atol=1e-4)


def test_a_damaged_entry_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCROP_CACHE", str(tmp_path))
    cached_session(MODEL, _options())
    (entry,) = _entries(tmp_path)
    entry.write_bytes(b"not an onnx graph")
    session = cached_session(MODEL, _options())
    assert len(_run(session)) == len(session.get_outputs())
    (again,) = _entries(tmp_path)
    assert again == entry and again.stat().st_size > 1000


def test_a_changed_model_file_gets_its_own_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCROP_CACHE", str(tmp_path / "cache"))
    copy = tmp_path / "yunet.onnx"
    copy.write_bytes(MODEL.read_bytes())
    cached_session(copy, _options())
    os.utime(copy, ns=(copy.stat().st_atime_ns, copy.stat().st_mtime_ns + 10**9))
    cached_session(copy, _options())
    assert len(_entries(tmp_path / "cache")) == 2


def test_each_model_keeps_its_most_recently_used_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCROP_CACHE", str(tmp_path / "cache"))
    copies = []
    for k in range(KEEP_PER_MODEL + 2):  # a model installed in that many places: one entry each
        copy = tmp_path / f"install{k}" / "yunet.onnx"
        copy.parent.mkdir()
        copy.write_bytes(MODEL.read_bytes())
        copies.append(copy)
    cached_session(copies[0], _options())
    (first,) = _entries(tmp_path / "cache")
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**12))  # the one in use
    for copy in copies[1:]:
        cached_session(copy, _options())
    entries = _entries(tmp_path / "cache")
    assert len(entries) == KEEP_PER_MODEL and first in entries
    other = tmp_path / "other.onnx"  # another model's entries are not touched
    other.write_bytes(MODEL.read_bytes())
    cached_session(other, _options())
    assert len(_entries(tmp_path / "cache")) == KEEP_PER_MODEL + 1


@pytest.mark.parametrize("setting", ["off", "0", ""])
def test_off_means_no_files(tmp_path, monkeypatch, setting):
    monkeypatch.setenv("GENCROP_CACHE", setting)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() is None
    _run(cached_session(MODEL, _options()))
    assert not any(tmp_path.rglob("*.onnx"))


def test_an_unwritable_cache_only_costs_the_optimisation(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("GENCROP_CACHE", str(blocker))
    session = cached_session(MODEL, _options())
    assert len(_run(session)) == len(session.get_outputs())
    assert blocker.read_text().startswith("a file")


def test_unoptimised_sessions_are_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCROP_CACHE", str(tmp_path))
    opts = _options()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    cached_session(MODEL, opts)
    assert _entries(tmp_path) == []
