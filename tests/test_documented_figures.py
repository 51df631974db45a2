"""The figures the README and the model card quote are the ones the bundled model scores.

``docs/figures.json`` is written by ``tools/headline_figures.py measure``; the
docs mark each figure with the entry it shows.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import gencrop

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "headline_figures.py"


def _tool(*args: str) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ)
    src = str(Path(gencrop.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, env=env, timeout=1200)


def test_docs_show_exactly_the_recorded_figures():
    out = _tool("check-docs")
    assert out.returncode == 0, out.stdout + out.stderr
    count = int(out.stdout.strip().splitlines()[-1].split()[0])
    assert count >= 18  # the README headline and the model card table


@pytest.mark.slow
def test_bundled_model_still_scores_the_documented_fcdb_figures(shared_data):
    if not (shared_data / "fcdb" / "images").is_dir():
        pytest.skip("no FCDB photos in the shared data")
    out = _tool("--data-root", str(shared_data), "check")
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
