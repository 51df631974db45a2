"""GenCrop-C: the requested-shape variant builds, reads its request, saves/loads, and trains with the same loop."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")

from gencrop.cli import main  # noqa: E402
from gencrop.modeling import GenCrop, GenCropConfig  # noqa: E402
from gencrop.modeling.conditioned import GenCropC, crop_shape, shape_condition, training_condition  # noqa: E402

from test_train_synth import make_dataset  # noqa: E402

SMALL = dict(
    arch="test_efficientnet", image_size=64, in_channels=3, variant="gencrop-c", fuse_channels=32, ffn_channels=64
)


def test_crop_shape_and_requests():
    crop = torch.tensor([[10.0, 10.0, 50.0, 60.0]])
    valid = torch.tensor([[0.0, 0.0, 100.0, 100.0]])
    c = crop_shape(crop, valid)[0]
    assert c[0] == pytest.approx(0.2) and c[1] == pytest.approx(math.log(40 / 50)) and c[2:].tolist() == [1, 1]
    r = shape_condition(2, aspect=4 / 5)
    assert r.shape == (2, 4) and r[0].tolist() == pytest.approx([0.0, math.log(0.8), 0.0, 1.0])
    with pytest.raises(ValueError):
        shape_condition(1, area=1.5)
    torch.manual_seed(0)
    t = training_condition(crop.repeat(200, 1), valid.repeat(200, 1), drop_prob=0.25)
    dropped = 1 - t[:, 2:].mean()
    assert 0.1 < float(dropped) < 0.4
    assert torch.all(t[:, 0][t[:, 2] == 0] == 0)


def test_gencrop_c_reads_the_request_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = GenCropC(GenCropConfig(**SMALL)).eval()
    images = torch.randn(2, 3, 64, 64)
    subject = torch.tensor([[10.0, 10.0, 40.0, 50.0]] * 2)
    with torch.no_grad():
        a = model(images, subject, target_shape=shape_condition(2, area=0.3, aspect=0.8))
        b = model(images, subject, target_shape=shape_condition(2, area=0.9, aspect=1.5))
        none = model(images, subject)
        via_kwargs = model(images, subject, **model.shape_conditioning(2, aspect=0.8, area=0.3))
    torch.testing.assert_close(via_kwargs.crop, a.crop)
    assert a.crop.shape == (2, 4) and a.cell_crops.shape == (2, 16, 4)
    assert not torch.allclose(a.cell_crops, b.cell_crops)
    assert none.crop.shape == (2, 4)
    model.save_pretrained(tmp_path / "m")
    loaded = GenCrop.from_pretrained(tmp_path / "m")
    assert isinstance(loaded, GenCropC)
    with torch.no_grad():
        again = loaded(images, subject, target_shape=shape_condition(2, area=0.3, aspect=0.8))
    torch.testing.assert_close(again.crop, a.crop)
    from gencrop.geometry import Box
    from gencrop.inference import Cropper

    cropper = Cropper.from_pretrained(tmp_path / "m")
    photo = (torch.rand(60, 90, 3) * 255).byte().numpy()
    res = cropper.crop(photo, subject=Box(20, 10, 30, 30), aspect=4 / 5)
    assert res.size == (90, 60)


def test_gencrop_c_gives_each_cell_its_position_and_each_photo_its_own_answer():
    """The cells get the positional encoding by cell, not by the photo's place in the batch: a photo's
    crop does not depend on the photos batched with it, and identical cells still differ by position."""
    torch.manual_seed(0)
    model = GenCropC(GenCropConfig(**SMALL)).eval()
    images = torch.randn(3, 3, 64, 64)
    subject = torch.tensor([[10.0, 10.0, 40.0, 50.0]] * 3)
    request = shape_condition(3, aspect=0.8)
    with torch.no_grad():
        batched = model(images, subject, target_shape=request).crop
        alone = torch.cat([model(images[i : i + 1], subject[:1], target_shape=request[:1]).crop for i in range(3)])
        flat = torch.zeros(1, model.config.cell_channels, 4, 4)
        offsets = model.encode_cells(flat, target_shape=request[:1])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-4)
    per_cell = offsets.flatten(2)[0].T  # (cells, 4): the same feature everywhere, so only the position differs
    assert torch.unique(per_cell.round(decimals=5), dim=0).shape[0] == per_cell.shape[0]


def test_train_gencrop_c_cli(tmp_path):
    pytest.importorskip("accelerate")  # the train extra
    data = make_dataset(tmp_path / "d", n_photos=6, per_photo=1, canvas=96)
    run = tmp_path / "run"
    args = [
        "train",
        str(data),
        "-o",
        str(run),
        "--variant",
        "gencrop-c",
        "--arch",
        "test_efficientnet",
        "--pretrained",
        "none",
        "--dim",
        "64",
        "--batch-size",
        "4",
        "--epochs",
        "1",
        "--workers",
        "0",
        "-q",
    ]
    assert main(args) == 0
    hist = json.loads((run / "loss.json").read_text())
    assert hist[0]["epoch"] == 1 and math.isfinite(hist[0]["val_loss"])
    assert isinstance(GenCrop.from_pretrained(run), GenCropC)
