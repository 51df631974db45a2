"""Contracts of the crop rules, worked out by hand on asymmetric boxes (no shared data needed).

Each test pins one rule of :mod:`gencrop.shapes` on both axes and both orientations, with the
arithmetic written beside the expected value.
"""

from __future__ import annotations

import pytest

from gencrop.geometry import Box
from gencrop.shapes import Shape, fit_shape, pull_toward

W, H = 1000, 800  # a landscape photo


@pytest.mark.parametrize(
    "subject, centre",
    [
        # box centre (200, 150); subject centre (520, 430): half way = (360, 290), down and right
        (Box(500, 400, 40, 60), (360, 290)),
        # box centre (200, 150); subject centre (30, 40): half way = (115, 95), up and left
        (Box(10, 20, 40, 40), (115, 95)),
        # the same x, a subject straight below: only y moves, (200, 150 + (650 - 150) / 2 = 400)
        (Box(190, 600, 20, 100), (200, 400)),
        # the same y, a subject straight to the left: only x moves, (200 - (200 - 50) / 2 = 125, 150)
        (Box(40, 140, 20, 20), (125, 150)),
    ],
)
def test_pull_moves_toward_the_subject_on_both_axes(subject, centre):
    box = Box(100, 100, 200, 100)
    moved = pull_toward(box, subject, 0.5, W, H)
    assert (moved.w, moved.h) == (200, 100)  # every move here stays inside the photo
    assert moved.center == pytest.approx(centre)


def test_pull_in_a_portrait_photo_toward_the_bottom():
    # 600 x 900 photo; box centre (300, 200), subject centre (300, 800): a quarter of 600 down is 150
    moved = pull_toward(Box(200, 100, 200, 200), Box(250, 750, 100, 100), 0.25, 600, 900)
    assert moved == Box(200, 250, 200, 200)


@pytest.mark.parametrize(
    "proposal, text, expected",
    [
        # area 480 * 270 = 129600 = 900 * (16 * 9): m = 30 -> 480 x 270, same centre (340, 185)
        (Box(100, 50, 480, 270), "16:9", Box(100, 50, 480, 270)),
        # a square proposal 300 x 300 = 90000 = 625 * 144: m = 25 -> 400 x 225 around (450, 350)
        (Box(300, 200, 300, 300), "16:9", Box(250, 238, 400, 225)),  # y = round(350 - 112.5) = 238
        # portrait 4:5: 160 x 200 = 32000 = 1600 * 20: m = 40 -> 160 x 200, centre (280, 200)
        (Box(200, 100, 160, 200), "4:5", Box(200, 100, 160, 200)),
        # 9:16 from a wide proposal 400 x 225 = 90000 = 625 * 144: m = 25 -> 225 x 400 around (700, 412.5)
        (Box(500, 300, 400, 225), "9:16", Box(588, 212, 225, 400)),  # x = round(587.5) = 588, y = round(212.5)
        # 3:2 from 240 x 240 = 57600 = 9600 * 6: m = round(sqrt(9600)) = 98 -> 294 x 196 around (720, 520)
        (Box(600, 400, 240, 240), "3:2", Box(573, 422, 294, 196)),
    ],
)
def test_fit_shape_keeps_the_proposals_area_for_every_shape(proposal, text, expected):
    crop = fit_shape(proposal, Shape.parse(text), W, H)
    assert crop == expected
    assert crop.area == pytest.approx(proposal.area, rel=0.01)


def test_fit_shape_area_request_for_non_square_shapes():
    # 0.18 of 1000 x 800 = 144000 = 1000 * (16 * 9): m = 31.6 -> 32 -> 512 x 288
    crop = fit_shape(Box(400, 300, 100, 100), Shape.parse("16:9", area=0.18), W, H)
    assert (crop.w, crop.h) == (512, 288) and crop.center == pytest.approx((450, 350), abs=0.5)
    # 0.05 of it = 40000 = 2000 * (4 * 5): m = 44.7 -> 45 -> 180 x 225
    crop = fit_shape(Box(400, 300, 100, 100), Shape.parse("4:5", area=0.05), W, H)
    assert (crop.w, crop.h) == (180, 225)


def test_subject_larger_than_the_proposal_grows_the_shaped_crop_on_the_tall_axis():
    # 4:3 from a 40 x 30 proposal (m = 10), but the subject is 50 x 200 tall: m = ceil(200 / 3) = 67
    crop = fit_shape(Box(100, 100, 40, 30), Shape.parse("4:3"), W, H, subject=Box(300, 500, 50, 200))
    assert (crop.w, crop.h) == (268, 201)
    # placed to hold the subject with the least move: y from the subject's bottom (700 - 201 = 499)
    assert crop.contains(Box(300, 500, 50, 200)) and crop.y == 499


@pytest.mark.parametrize(
    "photo, proposal, text, subject, expected",
    [
        # 1:1 in 1000 x 800: at most 800 x 800, but the subject is 850 wide: the crop is centred on
        # its columns, x = (100 + 950) / 2 - 400 = 125; its rows fit, so y holds them: 0
        ((1000, 800), Box(0, 0, 100, 100), "1:1", Box(100, 100, 850, 300), Box(125, 0, 800, 800)),
        # 16:9 in a 600 x 900 portrait photo: at most 37 x (16, 9) = 592 x 333, the subject is 500 tall:
        # centred on its rows, y = round(350 - 166.5) = 184; its columns fit: x = 0 (from the proposal)
        ((600, 900), Box(0, 800, 50, 50), "16:9", Box(200, 100, 100, 500), Box(0, 184, 592, 333)),
    ],
)
def test_a_subject_larger_than_the_shape_allows_is_centred(photo, proposal, text, subject, expected):
    assert fit_shape(proposal, Shape.parse(text), *photo, subject=subject) == expected
