"""`gencrop train` end to end on a tiny synthetic dataset: checkpoints, loss.json, resume after a kill, view-train."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")

from gencrop.cli import main  # noqa: E402
from gencrop.training.loop import box_iou_xyxy  # noqa: E402
from gencrop.training.schedule import cosine_with_warmup, warmup_steps  # noqa: E402

from test_train_synth import make_dataset  # noqa: E402

TINY = ["--arch", "mobilenetv2_100", "--pretrained", "none", "--dim", "64", "--batch-size", "4", "--workers", "0", "-q"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(
        tmp_path_factory.mktemp("loopdata"),
        n_photos=10,
        per_photo=2,
        canvas=128,
        splits=(("train", 0.6), ("val", 0.2), ("test", 0.2)),
    )


def _epochs(run):
    return [h["epoch"] for h in json.loads((run / "loss.json").read_text())]


def test_train_writes_checkpoints_and_resumes(data, tmp_path):
    pytest.importorskip("accelerate")  # the train extra
    from gencrop.modeling import GenCrop

    run = tmp_path / "run"
    torch.set_num_threads(2)
    assert main(["train", str(data), "-o", str(run), "--epochs", "1", "--use-subject", *TINY]) == 0
    assert _epochs(run) == [1]
    for name in ["config.json", "model.safetensors", "loss.png", "training_state.pt", "epoch1/model.safetensors"]:
        assert (run / name).is_file(), name
    entry = json.loads((run / "loss.json").read_text())[0]
    assert set(entry) >= {"epoch", "train_loss", "val_loss", "val_iou", "val_iou_full_view"}
    assert 0.0 <= entry["val_iou"] <= 1.0
    # a second run into the same folder must not silently overwrite it
    assert main(["train", str(data), "-o", str(run), "--epochs", "2", *TINY]) == 2
    # nor resume with another network
    assert main(["train", str(data), "-o", str(run), "--epochs", "2", "--resume", *TINY]) == 2
    assert main(["train", str(data), "-o", str(run), "--epochs", "2", "--use-subject", "--resume", *TINY]) == 0
    assert _epochs(run) == [1, 2]
    model = GenCrop.from_pretrained(run)
    assert model.config.in_channels == 4 and model.config.image_size == 64
    assert GenCrop.from_pretrained(run, epoch=2).config.arch == "mobilenetv2_100"
    # the run remembers its dataset: `gencrop eval RUN` scores the test split beside it
    assert main(["eval", str(run), "-o", str(tmp_path / "report"), "-q"]) == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["num_images"] == 2 and 0.0 <= summary["mean_iou"] <= 1.0


@pytest.mark.slow
def test_resume_after_kill_gives_continuous_history(data, tmp_path):
    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "gencrop", "train", str(data), "-o", str(run), "--epochs", "60", *TINY]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not (run / "epoch2").is_dir() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    done = _epochs(run)
    assert done == list(range(1, len(done) + 1)) and len(done) >= 1
    finish = [
        sys.executable,
        "-m",
        "gencrop",
        "train",
        str(data),
        "-o",
        str(run),
        "--epochs",
        str(len(done) + 2),
        "--resume",
        *TINY,
    ]
    r = subprocess.run(finish, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _epochs(run) == list(range(1, len(done) + 3))


def test_epoch_line_says_what_the_validation_measured(data, tmp_path, capsys):
    """An untrained network's frames have no area: IoU 0 is explained on the line, and matches loss.json.

    (Trained as gencrop did before the original's order, dropout and mask start: those options reach the config.)
    """
    run = tmp_path / "run"
    loud = [a for a in TINY if a != "-q"]
    legacy_net = ["--positional-dropout", "0", "--mask-channel-init", "zeros", "--no-shuffle"]
    assert main(["train", str(data), "-o", str(run), "--epochs", "1", "--max-epoch-len", "2", *legacy_net, *loud]) == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["positional_dropout"], config["mask_channel_init"]) == (0.0, "zeros")
    entry = json.loads((run / "loss.json").read_text())[0]
    line = next(ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("epoch 1:"))
    assert f"val IoU {entry['val_iou']:.3f} of the predicted frames with the true ones" in line
    assert f"the whole view scores {entry['val_iou_full_view']:.3f}" in line
    assert 0.0 <= entry["val_empty_frames"] <= 1.0
    empty = f"{entry['val_empty_frames']:.0%} of the predicted frames are empty"
    assert (empty in line) == (entry["val_empty_frames"] > 0)


def test_view_train_sheet(data, tmp_path):
    from PIL import Image

    out = tmp_path / "sheet.png"
    assert main(["view-train", str(data), "--out", str(out), "-n", "4", "--dim", "64"]) == 0
    assert Image.open(out).size == (2 * 68, 2 * 68)


def test_schedule_warmup_then_cosine():
    assert warmup_steps(500, 100000) == 500 and warmup_steps(500, 300) == 30
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = cosine_with_warmup(opt, 10, 100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] < 0.01


def test_box_iou_xyxy():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 3.0, 3.0]])
    torch.testing.assert_close(box_iou_xyxy(a, b), torch.tensor([1 / 7, 0.0]))


def test_init_fine_tunes_from_a_trained_model(data, tmp_path):
    """--init starts from a trained model's weights; another network is refused with a clear error."""
    pytest.importorskip("accelerate")  # the train extra
    from safetensors.torch import load_file

    from gencrop.modeling import GenCrop
    from gencrop.training.loop import _init_from

    base = tmp_path / "base"
    torch.set_num_threads(2)
    assert main(["train", str(data), "-o", str(base), "--epochs", "1", "--use-subject", *TINY]) == 0
    trained = GenCrop.from_pretrained(base)
    fresh = GenCrop(trained.config)
    assert not torch.equal(fresh.box_head.weight, trained.box_head.weight)
    _init_from(fresh, str(base))
    for (k, a), b in zip(fresh.state_dict().items(), trained.state_dict().values()):
        assert torch.equal(a, b), k
    # whole-photo fine-tuning run: trains, and its first epoch starts from the trained weights
    tuned = tmp_path / "tuned"
    assert (
        main(
            [
                "train",
                str(data),
                "-o",
                str(tuned),
                "--epochs",
                "1",
                "--use-subject",
                "--whole-view-prob",
                "1",
                "--lr",
                "1e-6",
                "--init",
                str(base),
                *TINY,
            ]
        )
        == 0
    )
    before, after = load_file(str(base / "model.safetensors")), load_file(str(tuned / "model.safetensors"))
    params = {name for name, _ in trained.named_parameters()}  # not BatchNorm statistics or step counters
    drift = max((after[k].float() - before[k].float()).abs().max().item() for k in params)
    assert 0 < drift < 1e-2  # a tiny learning rate moves the trained weights only a little
    # another input size is fine (fine-tuning at a higher resolution): no weight depends on it
    assert (
        main(
            [
                "train",
                str(data),
                "-o",
                str(tmp_path / "bigger"),
                "--epochs",
                "1",
                "--use-subject",
                "--init",
                str(base),
                *TINY,
                "--dim",
                "96",
            ]
        )
        == 0
    )
    assert GenCrop.from_pretrained(tmp_path / "bigger").config.image_size == 96
    # a model with another input (no mask channel) cannot be the starting point
    assert main(["train", str(data), "-o", str(tmp_path / "bad"), "--epochs", "1", "--init", str(base), *TINY]) == 2
