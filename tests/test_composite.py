"""Composite training canvases: several photos on one canvas, the given subject picks the target frame."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gencrop.data.composite import guillotine_layout, place_tiles  # noqa: E402
from gencrop.data.letterbox import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from gencrop.data.outpaint import read_outpaint_set  # noqa: E402
from gencrop.data.sampling import ViewSampler  # noqa: E402
from gencrop.data.training_set import TrainingSet  # noqa: E402
from gencrop.geometry import Box  # noqa: E402

from test_train_synth import make_dataset  # noqa: E402


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("synth"), n_photos=8)


def _rgb(item) -> np.ndarray:
    img = item["image"][:3].numpy()
    return img * np.asarray(IMAGENET_STD)[:, None, None] + np.asarray(IMAGENET_MEAN)[:, None, None]


def _interior(mask: np.ndarray) -> np.ndarray:
    """Pixels whose 5 x 5 neighbourhood is all inside ``mask`` (away from resampled edges)."""
    out = mask.copy()
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            out &= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out


def _inside(box, dim: int) -> np.ndarray:
    m = np.zeros((dim, dim), bool)
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    m[y1:y2, x1:x2] = True
    return m


def test_guillotine_layout_tiles_the_canvas_without_overlap():
    rng = np.random.default_rng(0)
    for count in (2, 3, 4):
        cells = guillotine_layout(count, 300, 200, rng)
        assert len(cells) == count
        assert sum(c.area for c in cells) == pytest.approx(300 * 200)
        for i, a in enumerate(cells):
            assert a.x >= 0 and a.y >= 0 and a.x2 <= 300 + 1e-9 and a.y2 <= 200 + 1e-9
            assert all(a.intersection(b) == 0 for b in cells[i + 1 :])


def test_tiles_keep_the_photo_aspect_and_stay_in_their_cell():
    rng = np.random.default_rng(1)
    sizes = [(400, 300), (300, 500), (640, 480)]
    for tile, (w, h) in zip(place_tiles(sizes, (256, 171), rng), sizes):
        p, c = tile.placed, tile.cell
        assert p.x >= c.x - 1 and p.y >= c.y - 1 and p.x2 <= c.x2 + 1 and p.y2 <= c.y2 + 1
        assert p.w / p.h == pytest.approx(w / h, rel=0.05)
        assert tile.to_canvas(Box(0, 0, w, h)).xyxy == pytest.approx(p.xyxy)


def test_composite_items_target_the_subjects_photo(synth):
    data = read_outpaint_set(synth, "train")
    plain = TrainingSet(
        data, dim=128, use_subject=True, augment=False, seed=3, sampler=ViewSampler(whole_canvas_prob=1.0)
    )
    comp = TrainingSet(data, dim=128, use_subject=True, augment=False, seed=3, composite_prob=1.0)
    smaller = 0
    for i in range(len(comp)):
        a, b = plain[i], comp[i]
        crop, valid, mask_box = b["crop"], b["valid"], b["subject_mask_box"]
        # the target frame lies inside its own photo, which is one part of the canvas
        assert (crop[:2] >= valid[:2] - 1e-4).all() and (crop[2:] <= valid[2:] + 1e-4).all()
        smaller += float((valid[2] - valid[0]) * (valid[3] - valid[1])) < 0.7 * 128 * 128
        m = b["image"][3] > 0.5
        ys, xs = torch.nonzero(m, as_tuple=True)
        assert len(xs) > 0
        assert xs.min() >= mask_box[0] - 1 and xs.max() < mask_box[2] + 1
        assert xs.min() >= valid[0] - 1 and xs.max() < valid[2] + 1
        # under the mask lies the same subject as in the photo on its own (its colour), not the photo around it
        inner_plain, inner_comp = _interior(a["image"][3].numpy() > 0.5), _interior(m.numpy())
        colour_plain = _rgb(a)[:, inner_plain].mean(1)
        colour_comp = _rgb(b)[:, inner_comp].mean(1)
        around = _rgb(a)[:, _interior(_inside(a["valid"], 128)) & ~(a["image"][3].numpy() > 0.5)].mean(1)
        assert np.abs(colour_plain - colour_comp).max() < 0.35 * np.abs(colour_plain - around).max()
        # frame and subject keep their place relative to the photo in both renderings
        for item in (a, b):
            v = item["valid"]
            rel = (item["crop"] - v[[0, 1, 0, 1]]) / (v[[2, 3, 2, 3]] - v[[0, 1, 0, 1]])
            item["rel"] = rel
        assert torch.allclose(a["rel"], b["rel"], atol=0.03)
    assert smaller == len(comp)


def test_composite_prob_zero_leaves_items_unchanged(synth):
    data = read_outpaint_set(synth, "train")
    a = TrainingSet(data, dim=64, use_subject=True, seed=2)
    b = TrainingSet(data, dim=64, use_subject=True, seed=2, composite_prob=0.0)
    for i in range(3):
        assert torch.equal(a[i]["image"], b[i]["image"]) and torch.equal(a[i]["crop"], b[i]["crop"])
