"""Shared test fixtures.

Real data and golden vectors live in ``$GENCROP_SHARED`` (default: ``../shared``
beside the repository). Tests that need it skip cleanly when it is absent, as
on a user's fresh clone.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """The tests' optimised onnxruntime graphs go to a temporary folder, not the user's ~/.cache
    (subprocesses the tests start inherit it)."""
    old = os.environ.get("GENCROP_CACHE")
    os.environ["GENCROP_CACHE"] = str(tmp_path_factory.mktemp("gencrop-cache"))
    yield
    if old is None:
        os.environ.pop("GENCROP_CACHE", None)
    else:
        os.environ["GENCROP_CACHE"] = old


def shared_root() -> Path:
    return Path(os.environ.get("GENCROP_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    root = shared_root()
    if not root.is_dir():
        pytest.skip(f"shared data folder not found at {root} (set GENCROP_SHARED)")
    return root


@pytest.fixture(scope="session")
def golden_dir(shared_dir) -> Path:
    d = shared_dir / "golden"
    if not d.is_dir():
        pytest.skip(f"golden vectors not found at {d}")
    return d


@pytest.fixture(scope="session")
def shared_data(shared_dir) -> Path:
    d = shared_dir / "data"
    if not d.is_dir():
        pytest.skip(f"shared data not found at {d}")
    return d


@pytest.fixture(scope="session")
def example_photo() -> Path:
    """The bundled public-domain example photo (NASA astronaut portrait)."""
    return REPO_ROOT / "src" / "gencrop" / "assets" / "astronaut.jpg"
