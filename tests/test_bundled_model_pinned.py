"""The bundled model's crops, pinned: the expectations file is what it did when it was shipped.

``tools/pin_bundled_model.py`` writes ``tests/data/bundled_model_expectations.json``
(rerun it when the weights change). The tolerances are far below how far a
crop moves when the subject is given in the wrong convention (x, y, w, h
instead of x1, y1, x2, y2), which the file records for every case.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from gencrop.runtime import DEFAULT_MODEL_DIR

EXPECTATIONS = Path(__file__).parent / "data" / "bundled_model_expectations.json"
RERUN = "the bundled weights changed: rerun `python tools/pin_bundled_model.py` and commit its output"


@pytest.fixture(scope="module")
def pinned():
    if not (DEFAULT_MODEL_DIR / "model.safetensors").exists():
        pytest.skip("no bundled model in this checkout")
    return json.loads(EXPECTATIONS.read_text())


@pytest.fixture(scope="module")
def cropper(pinned):
    pytest.importorskip("torch")  # pinned on the torch runtime
    from gencrop.inference import Cropper

    return Cropper.from_pretrained(device="cpu", runtime="torch")  # as pinned; onnx is compared to torch elsewhere


@pytest.fixture(scope="module")
def photos(example_photo):
    from gencrop.io import load_image

    img, _ = load_image(example_photo)
    return lambda region: img if region is None else img.crop(tuple(region))


def test_expectations_belong_to_the_bundled_weights(pinned):
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        h.update((DEFAULT_MODEL_DIR / name).read_bytes())
    assert pinned["model_digest"] == h.hexdigest(), RERUN


def test_tolerances_would_catch_a_wrong_subject_convention(pinned):
    """Every case moves by more than the tolerance under the mistake; most by far more."""
    for case in pinned["cases"]:
        assert (
            case["xywh_mistake_moves_crop_px"] > 2 * pinned["crop_tolerance_px"]
            or case["xywh_mistake_moves_heatmap"] > 2 * pinned["heatmap_tolerance"]
        ), case["subject"]


def test_bundled_model_crops_as_pinned(pinned, cropper, photos):
    for case in pinned["cases"]:
        res = cropper.crop(photos(case["region"]), subject=tuple(case["subject"]))
        where = f"{case['photo']} subject {case['subject']}"
        assert list(res.size) == case["size"], where
        assert res.raw_box.xywh == pytest.approx(case["raw_box"], abs=pinned["crop_tolerance_px"]), where
        np.testing.assert_allclose(
            res.heatmap, np.asarray(case["heatmap"]), rtol=0, atol=pinned["heatmap_tolerance"], err_msg=where
        )
