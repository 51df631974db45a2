"""Baselines and the scoring protocol of the runner."""

import pytest

from gencrop.data.benchmarks import Benchmark, BenchmarkPhoto
from gencrop.evaluation.baselines import Prediction, make_baseline, subject_window
from gencrop.evaluation.runner import evaluate, score_photo
from gencrop.geometry import Box, score_against_ground_truths

from eval_layouts import synth_photo


@pytest.mark.parametrize("size", [(400, 300), (300, 500), (1000, 1000)])
@pytest.mark.parametrize(
    "subject", [Box(10, 20, 30, 40), Box(150, 100, 200, 150), Box(0, 0, 260, 290), Box(-20, 250, 100, 400)]
)
def test_subject_window_definition(size, subject):
    W, H = size
    win = subject_window(subject, W, H)
    photo = Box(0, 0, W, H)
    assert photo.contains(win)
    assert win.aspect == pytest.approx(W / H)
    assert win.area >= 0.5 * W * H * (1 - 1e-9)
    need = subject.expand(1.1).intersect(photo)
    assert win.contains(need, tol=1e-6)
    # smallest: either exactly half the photo, or the grown subject touches both sides in one direction
    tight = (
        win.area == pytest.approx(0.5 * W * H)
        or win.w == pytest.approx(need.w)
        or win.h == pytest.approx(need.h)
        or win.area == pytest.approx(W * H)
    )
    assert tight


def test_baseline_specs():
    assert make_baseline("identity").predict(None, (300, 200), None, None).box == Box(0, 0, 300, 200)
    c = make_baseline("center:0.8").predict(None, (300, 200), None, None).box
    assert c.xywh == pytest.approx((30, 20, 240, 160))
    assert make_baseline("center").name == "center:0.8"
    assert make_baseline("subject").predict(None, (300, 200), None, None).box == Box(0, 0, 300, 200)
    for bad in ("centre:2", "nope", "identity:3"):
        with pytest.raises(ValueError):
            make_baseline(bad)


class _Fixed:
    """A method that returns a fixed box (to check the protocol around it)."""

    name = "fixed"
    needs_pixels = False
    uses_mask = False

    def __init__(self, box):
        self.box = box

    def predict(self, image, size, subject, mask):
        return Prediction(self.box)


def test_predictions_are_clamped_then_scored(tmp_path):
    path = tmp_path / "a.jpg"
    synth_photo(path, (200, 100))
    gts = [Box(20, 10, 150, 80), Box(0, 0, 100, 100)]
    bench = Benchmark("t", tmp_path, [BenchmarkPhoto("a.jpg", path, gts)])
    raw = Box(-30, 5, 200, 120)  # spills out left and bottom
    run = evaluate(bench, _Fixed(raw), progress=False)
    r = run.results[0]
    assert r.raw == raw and r.pred == Box.from_xyxy(0, 5, 170, 100)
    iou, disp, k = score_against_ground_truths(r.pred, gts, 200, 100)
    assert (r.iou, r.disp, r.gt_index) == (iou, disp, k) and r.gt == gts[k]
    assert score_photo(raw, bench.photos[0], 200, 100)[1:] == (iou, disp, k)
    # a prediction entirely right of the photo keeps its negative width (published protocol) and scores 0
    r = evaluate(bench, _Fixed(Box(250, 10, 40, 40)), progress=False).results[0]
    assert r.pred.w < 0 and r.iou == 0.0


def test_unreadable_photo_is_recorded_not_fatal(tmp_path):
    good = tmp_path / "good.jpg"
    synth_photo(good, (120, 90))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    photos = [
        BenchmarkPhoto("bad.jpg", bad, [Box(0, 0, 10, 10)]),
        BenchmarkPhoto("good.jpg", good, [Box(0, 0, 60, 90)]),
    ]
    run = evaluate(Benchmark("t", tmp_path, photos), make_baseline("identity"), progress=False)
    assert [r.ok for r in run.results] == [False, True]
    assert "bad.jpg" in run.results[0].error and "\n" not in run.results[0].error
    assert run.summary()["num_images"] == 1 and run.summary()["mean_iou"] == pytest.approx(0.5)


def test_smartcrop_baseline_returns_a_box_of_the_photo_shape():
    pytest.importorskip("smartcrop")
    import numpy as np
    from PIL import Image

    from gencrop.evaluation.baselines import make_baseline

    rng = np.random.default_rng(0)
    arr = np.full((120, 200, 3), 40, np.uint8)
    arr[30:90, 120:180] = rng.integers(0, 255, (60, 60, 3))  # all the detail on the right
    method = make_baseline("smartcrop")
    pred = method.predict(Image.fromarray(arr), (200, 120), None, None).box
    assert Box(0, 0, 200, 120).contains(pred, tol=1)
    assert pred.w / pred.h == pytest.approx(200 / 120, rel=0.1)
