"""The model shipped inside the package: loads with no argument and crops the example photo offline."""

import json

import pytest

from gencrop.geometry import Box
from gencrop.runtime import DEFAULT_MODEL_DIR


@pytest.fixture(scope="module")
def bundled():
    if not (DEFAULT_MODEL_DIR / "model.safetensors").exists():
        pytest.skip("no bundled model in this checkout")
    from gencrop.inference import Cropper

    return Cropper.from_pretrained(device="cpu")


def test_bundled_model_is_small_half_precision(bundled):
    pytest.importorskip("torch")  # safetensors' "pt" framework
    from safetensors import safe_open

    path = DEFAULT_MODEL_DIR / "model.safetensors"
    assert path.stat().st_size < 10 * 2**20
    with safe_open(str(path), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys() if f.get_tensor(k).is_floating_point()} == {
            "torch.float16"
        }
    assert json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())["arch"] == "tf_efficientnet_lite0"
    assert bundled.runtime == "onnx"  # the bundled model ships its ONNX twin: no torch needed to crop


def test_bundled_model_crops_the_example_around_the_given_subject(bundled, example_photo):
    res = bundled.crop(example_photo, subject=(150, 30, 200, 300))
    assert Box(0, 0, 512, 512).contains(res.box)
    assert res.box.area > 0.2 * 512 * 512  # a crop, not a sliver
    assert res.box.intersection(Box(150, 30, 200, 300)) > 0.5 * 200 * 300  # keeps most of the subject


def test_quick_start_command_finds_the_subject_and_writes_outputs(example_photo, tmp_path, capsys):
    """The README's first command: no --model, no --subject, nothing beyond the plain install."""
    if not (DEFAULT_MODEL_DIR / "model.safetensors").exists():
        pytest.skip("no bundled model in this checkout")
    from gencrop.cli import main

    assert main(["crop", str(example_photo), "--visualize", "-o", str(tmp_path), "--json", "-q"]) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[0])
    assert record["subject_source"] == "segmentation"  # the default finder: the astronaut's whole figure
    assert (tmp_path / "astronaut_crop.jpg").is_file() and (tmp_path / "astronaut_vis.jpg").is_file()


def test_the_crop_follows_the_subject_on_the_example(bundled, example_photo):
    """Astronaut, rocket, flag: three different crops, each holding its subject, each drawn toward it."""
    subjects = {"astronaut": Box(120, 40, 200, 380), "rocket": Box(420, 0, 90, 330), "flag": Box(0, 0, 60, 300)}
    crops = {name: bundled.crop(example_photo, subject=s).box for name, s in subjects.items()}
    for name, s in subjects.items():
        c = crops[name]
        assert c.x <= s.x and c.y <= s.y and c.x2 >= s.x2 and c.y2 >= s.y2, (name, c)
    names = list(crops)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert crops[a].iou(crops[b]) < 0.95, (a, b, crops[a], crops[b])
    # left to right: the flag's crop sits left of the astronaut's, the rocket's right of it
    assert crops["flag"].center[0] < crops["astronaut"].center[0] < crops["rocket"].center[0]


def test_every_shape_from_the_bundled_model(bundled, example_photo):
    results = bundled.crop(example_photo, (120, 40, 200, 380), shapes=["1:1", "16:9", "1200x630"])
    (s1, s2, s3) = results
    assert s1.box.w == s1.box.h and s2.box.w * 9 == s2.box.h * 16 and s3.box.w * 21 == s3.box.h * 40
