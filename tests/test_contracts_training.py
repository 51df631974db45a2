"""Contracts of what the network learns from, worked out by hand (no shared data, no golden files).

The training views' aspect ratios for portrait and landscape frames, and the subject boundary
loss's exemption of edges where the subject touches the frame or the photo's valid area.
"""

from __future__ import annotations

import numpy as np
import pytest

from gencrop.data.sampling import LANDSCAPE_RATIOS, PORTRAIT_RATIOS, ViewSampler
from gencrop.geometry import Box


def test_portrait_frame_options_are_portrait_views_limited_by_the_canvas_height():
    # a 100 x 200 frame in a wide, low 1000 x 300 canvas; portrait view w = r * L, h = L:
    # L >= max(frame h 200, frame w / r <= 150) = 200; L <= min(canvas h 300, 1000 / r, 2 * 200) = 300
    opts = ViewSampler().options(Box(400, 50, 100, 200), 1000, 300)
    assert opts == [(r, True, 200, 300) for r in PORTRAIT_RATIOS]


def test_landscape_frame_options_are_landscape_views_limited_by_the_canvas():
    # a 300 x 150 frame in an 800 x 400 canvas; landscape view w = L, h = r * L:
    # L >= max(300, 150 / r) = 300 for every ratio; L <= min(800, 400 / r, 2 * 300 = 600)
    opts = ViewSampler().options(Box(100, 100, 300, 150), 800, 400)
    his = [400, 500, 400 / 0.75, 560, 600, 600]  # 400/r for r = 1, 4/5, 3/4, 5/7; then the 600 cap
    assert [(r, pv, lo) for r, pv, lo, _ in opts] == [(r, False, 300) for r in LANDSCAPE_RATIOS]
    assert [hi for *_, hi in opts] == pytest.approx(his)


@pytest.mark.parametrize(
    "frame, canvas, portrait",
    [
        (Box(400, 50, 100, 200), (1000, 300), True),  # portrait frame, canvas limits the height
        (Box(120, 40, 150, 260), (500, 700), True),  # portrait frame in a portrait canvas
        (Box(100, 100, 300, 150), (800, 400), False),  # landscape frame
        (Box(30, 200, 240, 90), (320, 900), False),  # landscape frame in a tall canvas
    ],
)
def test_sampled_views_have_a_listed_aspect_and_the_frames_orientation(frame, canvas, portrait):
    width, height = canvas
    ratios = PORTRAIT_RATIOS if portrait else LANDSCAPE_RATIOS
    sampler = ViewSampler(invert_prob=0.0)
    rng = np.random.default_rng(7)
    for _ in range(200):
        view, fell_back = sampler.sample(frame, width, height, rng)
        assert not fell_back
        assert view.contains(frame) and view.x >= 0 and view.y >= 0 and view.x2 <= width and view.y2 <= height
        short, long = sorted((view.w, view.h))
        assert (view.h >= view.w) == portrait or view.w == view.h
        # rounding outwards moves each side by under a pixel: the ratio within 1 px of a listed one
        assert min(abs(short - r * long) for r in ratios) <= 1.0 + 1e-6, (view, ratios)


torch = pytest.importorskip("torch")


def _loss(subject, crop, valid, pred):
    from gencrop.training.losses import subject_boundary_loss

    t = lambda rows: torch.tensor(rows, dtype=torch.float32)
    return float(subject_boundary_loss(t(subject), t(crop), t(valid), t(pred), margin=0.025))


def test_boundary_loss_exempts_edges_where_the_subject_touches_the_valid_area():
    # a portrait photo letterboxed with side bars: valid x from 0.1 to 0.9. The subject's left edge
    # lies on the photo's left border (0.1), the crop (0.3 ...) cuts the subject elsewhere.
    subject, crop, valid = [[0.1, 0.3, 0.5, 0.7]], [[0.3, 0.2, 0.8, 0.9]], [[0.1, 0.0, 0.9, 1.0]]
    pred = [[0.11, 0.31, 0.49, 0.72]]  # 0.01, 0.01, 0.01, 0.02 from the subject's edges
    # penalties 0.025 - d: [0.015, 0.015, 0.015, 0.005]; the left edge is exempt: (0.015 + 0.015 + 0.005) / 4
    assert _loss(subject, crop, valid, pred) == pytest.approx(0.035 / 4, abs=1e-6)
    # the same subject away from every border: all four edges count, (3 * 0.015 + 0.005) / 4
    away = [[0.12, 0.3, 0.5, 0.7]]
    assert _loss(away, crop, valid, [[0.13, 0.31, 0.49, 0.72]]) == pytest.approx(0.05 / 4, abs=1e-6)


def test_boundary_loss_exempts_edges_where_the_subject_touches_the_frame_on_both_axes():
    valid = [[0.0, 0.125, 1.0, 0.875], [0.0, 0.125, 1.0, 0.875]]  # a landscape photo: bars above and below
    # first: subject bottom = frame bottom (0.8); second: subject right = frame right (0.6)
    subject = [[0.2, 0.3, 0.4, 0.8], [0.2, 0.3, 0.6, 0.5]]
    crop = [[0.1, 0.2, 0.7, 0.8], [0.1, 0.2, 0.6, 0.7]]
    pred = [[0.2, 0.3, 0.4, 0.8], [0.2, 0.3, 0.6, 0.5]]  # on every subject edge: 0.025 each unless exempt
    # 8 edges, 2 exempt: 6 * 0.025 / 8
    assert _loss(subject, crop, valid, pred) == pytest.approx(6 * 0.025 / 8, abs=1e-6)
