"""Requested shapes and the subject promise (gencrop.shapes): exact aspect in whole pixels, inside the photo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gencrop.geometry import Box
from gencrop.shapes import Shape, fit_shape, keep_subject, pull_toward, round_box


@pytest.mark.parametrize(
    "text, ratio, size",
    [
        ("1:1", (1, 1), None),
        ("16:9", (16, 9), None),
        ("4:5", (4, 5), None),
        ("0.8", (4, 5), None),
        ("1200x630", (40, 21), (1200, 630)),
        ("3:2", (3, 2), None),
        ("1.5", (3, 2), None),
        ("free", None, None),
    ],
)
def test_parse(text, ratio, size):
    s = Shape.parse(text)
    assert s.ratio == ratio and s.size == size


@pytest.mark.parametrize("bad", ["0:1", "1:0", "-1:2", "abc", "16:", "0x5", "1:2:3"])
def test_parse_rejects(bad):
    with pytest.raises(ValueError):
        Shape.parse(bad)


def test_names_for_files():
    assert [Shape.parse(t).name for t in ("1:1", "16:9", "1200x630", "free")] == ["1x1", "16x9", "1200x630", "free"]


def _inside(box: Box, w: int, h: int) -> bool:
    return box.x >= 0 and box.y >= 0 and box.x2 <= w and box.y2 <= h and box.w >= 1 and box.h >= 1


def _whole(box: Box) -> bool:
    return all(float(v).is_integer() for v in box.xywh)


def _contains(crop: Box, s: Box) -> bool:
    return crop.x <= s.x and crop.y <= s.y and crop.x2 >= s.x2 and crop.y2 >= s.y2


def test_fit_shape_exact_aspect_inside_keeps_subject_random():
    """Every fitted crop: whole pixels, inside the photo, exactly p:q, and the subject whenever it fits."""
    rng = np.random.default_rng(0)
    ratios = [(1, 1), (16, 9), (4, 5), (40, 21), (3, 2), (9, 16)]
    for _ in range(600):
        W, H = int(rng.integers(60, 2000)), int(rng.integers(60, 2000))
        x1, x2 = sorted(rng.uniform(-0.1 * W, 1.1 * W, 2))
        y1, y2 = sorted(rng.uniform(-0.1 * H, 1.1 * H, 2))
        proposal = Box.from_xyxy(x1, y1, x2 + 1, y2 + 1).clamp(W, H)
        sx, sy = rng.uniform(0, W - 2), rng.uniform(0, H - 2)
        subject = Box(sx, sy, rng.uniform(1, W - sx), rng.uniform(1, H - sy))
        p, q = ratios[int(rng.integers(len(ratios)))]
        if W < p or H < q:
            continue
        crop = fit_shape(proposal, Shape(ratio=(p, q)), W, H, subject)
        assert _whole(crop) and _inside(crop, W, H)
        assert crop.w * q == crop.h * p, (crop, p, q)
        largest = min(W // p, H // q)
        fits = (
            math.ceil(subject.x2) - math.floor(subject.x) <= largest * p
            and math.ceil(subject.y2) - math.floor(subject.y) <= largest * q
        )
        if fits:
            assert _contains(crop, subject), (W, H, proposal, subject, crop)
        else:  # too big for the shape: the largest crop, on the subject's centre
            assert crop.w == largest * p


def test_fit_shape_keeps_centre_and_area_of_the_proposal():
    proposal = Box(300, 100, 400, 300)  # centre (500, 250), area 120000
    crop = fit_shape(proposal, Shape.parse("1:1"), 1000, 800)
    assert crop.w == crop.h == pytest.approx(math.sqrt(120000), abs=1)
    assert crop.center == pytest.approx((500, 250), abs=1)
    # an off-centre proposal near the right edge slides back inside, keeping its size
    crop = fit_shape(Box(850, 100, 150, 150), Shape.parse("16:9"), 1000, 800)
    assert crop.x2 == 1000 and crop.w * 9 == crop.h * 16


def test_fit_shape_area_request():
    crop = fit_shape(Box(0, 0, 100, 100), Shape.parse("1:1", area=0.25), 1000, 800)
    assert crop.w * crop.h == pytest.approx(0.25 * 1000 * 800, rel=0.02)


def test_keep_subject_shifts_before_growing():
    # the crop is big enough: it moves (same size) to take in the subject on its right
    crop = keep_subject(Box(0, 0, 300, 200), Box(350, 50, 100, 100), 1000, 800)
    assert (crop.w, crop.h) == (300, 200) and _contains(crop, Box(350, 50, 100, 100))
    assert crop.x == 150  # the least move: the subject's right edge on the crop's
    # the subject is wider than the crop: grown in width only
    crop = keep_subject(Box(400, 300, 100, 100), Box(300, 320, 300, 50), 1000, 800)
    assert (crop.w, crop.h) == (300, 100) and _contains(crop, Box(300, 320, 300, 50))
    # a crop that already holds it is left alone
    assert keep_subject(Box(10, 20, 300, 200), Box(50, 50, 20, 20), 1000, 800) == Box(10, 20, 300, 200)


def test_round_box_is_the_one_rule():
    b = round_box(Box(59.4, 0.2, 406.2, 455.7), 512, 512)
    assert b == Box(59, 0, 407, 456) and _whole(b)
    assert round_box(Box(-5, -5, 2000, 2000), 512, 400) == Box(0, 0, 512, 400)


def test_pull_toward_moves_the_centre_part_of_the_way_and_stays_inside():
    box = Box(100, 100, 200, 100)  # centre (200, 150)
    moved = pull_toward(box, Box(380, 140, 20, 20), 0.25, 1000, 800)  # subject centre (390, 150)
    assert (moved.w, moved.h) == (200, 100)
    assert moved.center == pytest.approx((200 + 0.25 * 190, 150))
    assert pull_toward(box, Box(380, 140, 20, 20), 0.0, 1000, 800) == box
    # near the border, what moves past it is cut off: the crop tightens on the subject
    edge = pull_toward(Box(700, 0, 300, 100), Box(990, 0, 10, 10), 0.5, 1000, 800)
    assert edge.x == 700 + 0.5 * (995 - 850) and edge.x2 == 1000 and edge.w < 300
