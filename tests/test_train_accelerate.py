"""Two data-parallel processes under `accelerate launch` train one model together, on CPU.

`accelerate launch --multi_gpu` starts the workers through torchrun on any
machine (CPU-only included); `--cpu --num_processes N` starts one process
unless an MPI host file is given, so it is not the way to run several CPU
processes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_train_synth import make_dataset


@pytest.mark.slow
def test_two_cpu_processes_train_together(tmp_path):
    accelerate = Path(sys.executable).parent / "accelerate"
    if not accelerate.exists():
        accelerate = shutil.which("accelerate")
    if not accelerate:
        pytest.skip("accelerate is not installed")
    data = make_dataset(tmp_path / "d", n_photos=10, per_photo=1, canvas=96)
    run = tmp_path / "run"
    cmd = [
        str(accelerate),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "0",
        "-m",
        "gencrop",
        "train",
        str(data),
        "-o",
        str(run),
        "--cpu",
        "--arch",
        "test_efficientnet",
        "--pretrained",
        "none",
        "--dim",
        "64",
        "--batch-size",
        "2",
        "--epochs",
        "2",
        "--workers",
        "0",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "x2" in r.stderr  # both processes joined one group
    # 8 training photos, batch 2 per process: 2 steps per process per epoch (the data is sharded)
    assert "2 steps/epoch/process" in r.stderr
    hist = json.loads((run / "loss.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2]
    assert all(h["val_loss"] is not None for h in hist)
    assert (run / "epoch2" / "model.safetensors").is_file() and (run / "model.safetensors").is_file()
