"""Atomic writes: a writer that dies half-way leaves the old file (or none), never a partial one.

Resumable jobs treat "the file exists" as "done", so this is what makes
killing and resuming safe. The writer here really is interrupted: a separate
process is killed while its file is half written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gencrop
from gencrop.io import atomic_open, save_image, save_npz, write_json

_WRITER = """
import sys, time
from gencrop.io import atomic_open
with atomic_open(sys.argv[1], "w") as f:
    f.write("half of the new content " * 1000)
    f.flush()
    print("writing", flush=True)
    time.sleep(60)
    f.write("the other half")
"""


def _start_writer(path: Path) -> subprocess.Popen:
    env = dict(os.environ)
    src = str(Path(gencrop.__file__).resolve().parents[1])  # the gencrop under test
    env["PYTHONPATH"] = os.pathsep.join([src] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    line = proc.stdout.readline()
    if line.strip() != "writing":
        proc.kill()
        pytest.fail(f"the writer did not start: {proc.communicate()[1]}")
    return proc


@pytest.mark.parametrize("existing", [True, False])
def test_a_writer_killed_half_way_leaves_the_old_file_or_none(tmp_path, existing):
    path = tmp_path / "result.json"
    if existing:
        path.write_text("old\n")
    proc = _start_writer(path)
    try:
        # while the writer is half-way, readers see the old state
        assert (path.read_text() if path.exists() else None) == ("old\n" if existing else None)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert (path.read_text() if path.exists() else None) == ("old\n" if existing else None)
    # what it left is a hidden temporary beside the file, which no image or JSON listing picks up
    leftovers = [p.name for p in tmp_path.iterdir() if p != path]
    assert len(leftovers) == 1 and leftovers[0].startswith(".result.") and ".tmp" in leftovers[0]


def test_an_exception_half_way_keeps_the_old_file_and_cleans_up(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(path, "w") as f:
            f.write("new, half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_finished_writes_replace_the_file_with_normal_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    write_json(tmp_path / "a.json.gz", {"x": 1})
    save_npz(tmp_path / "b.npz", {"a": np.arange(3)})
    save_image(Image.new("RGB", (8, 4)), tmp_path / "c.jpg")
    for name in ("a.json.gz", "b.npz", "c.jpg"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json.gz", "b.npz", "c.jpg"]
    with Image.open(tmp_path / "c.jpg") as im:
        assert im.size == (8, 4)
