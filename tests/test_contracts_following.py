"""The subject-following protocol (gencrop.evaluation.following), worked out by hand (no shared data)."""

from __future__ import annotations

import pytest
from PIL import Image

from gencrop.data.benchmarks import Benchmark, BenchmarkPhoto
from gencrop.engine.detections import Detection
from gencrop.evaluation.baselines import Prediction
from gencrop.evaluation.following import FollowPair, evaluate_following, mirrored, subject_pairs
from gencrop.geometry import Box

# A 400 x 300 photo: subject A on the left, B on the right, at other heights.
A, B = Box(40, 60, 80, 120), Box(260, 120, 100, 80)  # centres (80, 120) and (310, 160)


def test_follow_is_a_move_toward_b():
    # crop_a centred on (100, 130), crop_b on (280, 150): 31.6 from B's centre (310, 160) instead of 212.1
    pair = FollowPair("p", "object", A, B, Box(20, 30, 160, 200), Box(200, 50, 160, 200))
    assert pair.follow
    # the same crops the other way round moved away from B (and toward A)
    assert not FollowPair("p", "object", A, B, Box(200, 50, 160, 200), Box(20, 30, 160, 200)).follow
    # a crop that does not move does not follow
    assert not FollowPair("p", "object", A, B, Box(20, 30, 160, 200), Box(20, 30, 160, 200)).follow


def test_follow_toward_b_even_when_the_crop_also_nears_a():
    # B below A: crop_b's centre (80, 215) is 45 from B's (80, 260), crop_a's (200, 100) is 200 from it;
    # crop_b is also nearer A's centre (80, 120): following is measured against B alone
    a, b = Box(40, 80, 80, 80), Box(40, 220, 80, 80)
    assert FollowPair("p", "object", a, b, Box(100, 0, 200, 200), Box(0, 115, 160, 200)).follow


def test_contain_and_move():
    # A (80 x 120 = 9600) has 40 x 120 = 4800 inside crop_a (x 80..240): 0.5; B fully inside crop_b: 1.0
    crop_a, crop_b = Box(80, 0, 160, 300), Box(240, 100, 160, 120)
    pair = FollowPair("p", "mirror", A, B, crop_a, crop_b)
    assert pair.contain == pytest.approx(0.75)
    # the crops share 0 px: move = 1; a crop that stays put: move = 0
    assert pair.move == pytest.approx(1.0)
    assert FollowPair("p", "mirror", A, B, crop_a, crop_a).move == pytest.approx(0.0)


def test_mirrored_and_pairs():
    assert mirrored(A, 400) == Box(280, 60, 80, 120)  # x: 400 - 120
    near_centre = Box(170, 60, 80, 120)  # its mirror (150, 60, 80 x 120) overlaps it: IoU 0.6, no pair
    assert subject_pairs(near_centre, (400, 300)) == []
    detections = [
        Detection(Box(60, 80, 40, 60), 0.9, "part of A"),  # inside A: not a separate object
        Detection(Box(250, 20, 120, 100), 0.3, "unsure"),  # under the score floor (0.4)
        Detection(Box(300, 250, 10, 10), 0.95, "tiny"),  # 100 px < 1% of 120000
        Detection(Box(200, 150, 150, 140), 0.8, "dog"),  # separate, large, confident
        Detection(Box(230, 10, 60, 60), 0.9, "bird"),  # also fine, but smaller: 0.9 * 0.17 < 0.8 * 0.42
    ]
    pairs = subject_pairs(A, (400, 300), detections)
    assert pairs == [("mirror", Box(280, 60, 80, 120)), ("object", Box(200, 150, 150, 140))]


class CentredOn:
    """A method whose crop is a 200 x 150 window centred on the subject it is given."""

    name = "centred"
    needs_pixels = False
    uses_mask = False

    def predict(self, image, size, subject, mask, shape=None):
        cx, cy = subject.center
        return Prediction(Box(cx - 100, cy - 75, 200, 150))


def test_evaluate_following_on_a_benchmark(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (400, 300)).save(path)
    photo = BenchmarkPhoto("photo", path, [Box(0, 0, 400, 300)], subject=A)
    photo.detections = [Detection(Box(200, 150, 150, 140), 0.8, "dog")]
    no_subject = BenchmarkPhoto("empty", path, [Box(0, 0, 400, 300)])
    run = evaluate_following(Benchmark("toy", tmp_path, [photo, no_subject]), CentredOn(), progress=False)
    assert run.photos == 1 and [p.kind for p in run.pairs] == ["mirror", "object"]
    mirror, obj = run.pairs
    # crop_a: centred on (80, 120) -> (-20, 45, 200 x 150), clamped to (0, 45, 180 x 150)
    assert mirror.crop_a == Box(0, 45, 180, 150)
    # mirror B (280, 60, 80 x 120), centre (320, 120): (220, 45, 200 x 150) clamped to (220, 45, 180 x 150)
    assert mirror.crop_b == Box(220, 45, 180, 150)
    # the object's centre (275, 220): (175, 145, 200 x 150), inside the photo as it is
    assert obj.crop_b == Box(175, 145, 200, 150)
    assert mirror.follow and obj.follow and mirror.contain == pytest.approx(1.0)
    assert run.summary()["follow"] == pytest.approx(1.0) and run.summary("mirror")["pairs"] == 1
