"""A small synthetic outpainted dataset (built in tests and benchmarks) and checks of the views made from it.

Each "photo" is a smooth colour field with a solid subject, pasted into a
noisy canvas at a known place: the frame is where the photo sits, the
subject's detection and polygon are known exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402

from gencrop.data.outpaint import read_outpaint_set  # noqa: E402
from gencrop.data.sampling import ViewSampler  # noqa: E402
from gencrop.data.training_set import TrainingSet, collate  # noqa: E402
from gencrop.io import save_npz, write_json  # noqa: E402


def make_dataset(
    root: Path,
    n_photos: int = 12,
    per_photo: int = 2,
    canvas: int = 256,
    seed: int = 0,
    photo_frac=(0.45, 0.8),
    splits=(("train", 0.75), ("val", 0.25)),
) -> Path:
    """Write ``root/{train,val}.json`` and ``root/outpaint/...``; returns the outpaint folder."""
    rng = np.random.default_rng(seed)
    images = root / "outpaint" / "images"
    images.mkdir(parents=True, exist_ok=True)
    detections, polygons, records = {}, {}, []
    mask_id = 0
    for p in range(n_photos):
        pid = f"p{p:03d}"
        aspect = rng.choice([0.75, 1.0, 1.33])
        sub = (rng.uniform(0.3, 0.5), rng.uniform(0.3, 0.5))  # subject size, fraction of the photo
        sub_xy = (rng.uniform(0.1, 0.9 - sub[0]), rng.uniform(0.1, 0.9 - sub[1]))
        records.append({"id": pid, "subject_xywh": [sub_xy[0], sub_xy[1], sub[0], sub[1]]})
        base = rng.uniform(60, 200, 3)
        for k in range(per_photo):
            long_side = rng.uniform(*photo_frac) * canvas
            w, h = (long_side, long_side / aspect) if aspect >= 1 else (long_side * aspect, long_side)
            w, h = int(w), int(h)
            x, y = int(rng.integers(0, canvas - w + 1)), int(rng.integers(0, canvas - h + 1))
            arr = rng.normal(128, 60, (canvas, canvas, 3))
            yy, xx = np.mgrid[0:h, 0:w]
            photo = base + 40 * np.stack([xx / w, yy / h, 0.5 * np.ones_like(xx)], -1)
            sx, sy, sw, sh = x + sub_xy[0] * w, y + sub_xy[1] * h, sub[0] * w, sub[1] * h
            arr[y : y + h, x : x + w] = photo
            cx, cy = sx + sw / 2, sy + sh / 2
            gy, gx = np.mgrid[0:canvas, 0:canvas]
            ellipse = ((gx + 0.5 - cx) / (sw / 2)) ** 2 + ((gy + 0.5 - cy) / (sh / 2)) ** 2 <= 1
            arr[ellipse] = 255 - base
            name = f"img{pid}_{x}_{y}_{w}_{h}"
            Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(images / f"{name}.jpg", quality=90)
            t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
            polygons[str(mask_id)] = np.stack([cx + sw / 2 * np.cos(t), cy + sh / 2 * np.sin(t)], 1).astype(np.float32)
            detections[name] = [{"xywh": [sx, sy, sw, sh], "score": 0.9, "class": "person", "mask_id": mask_id}]
            mask_id += 1
    start = 0
    for split, frac in splits:
        n = int(round(frac * n_photos)) if split != splits[-1][0] else n_photos - start
        write_json(root / f"{split}.json", records[start : start + n])
        start += n
    write_json(root / "outpaint" / "detect.json.gz", detections)
    save_npz(root / "outpaint" / "mask.npz", polygons)
    return root / "outpaint"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("synth"), n_photos=8)


def test_training_items_are_consistent(synth):
    data = read_outpaint_set(synth, "train")
    ds = TrainingSet(data, dim=128, use_subject=True, augment=True, seed=3)
    assert len(ds) == data.num_photos == 6
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (4, 128, 128)
        crop, valid, mask_box = item["crop"], item["valid"], item["subject_mask_box"]
        # the frame lies inside the valid region, the mask channel inside the mask box
        assert (crop[:2] >= valid[:2] - 1e-4).all() and (crop[2:] <= valid[2:] + 1e-4).all()
        m = item["image"][3]
        ys, xs = torch.nonzero(m, as_tuple=True)
        assert len(xs) > 0
        assert xs.min() >= mask_box[0] - 1 and xs.max() < mask_box[2] + 1
        # views are enlargements: the frame is at most the view
        assert (crop[2] - crop[0]) <= (valid[2] - valid[0]) + 1e-4


def test_items_are_deterministic_per_epoch(synth):
    data = read_outpaint_set(synth, "train")
    ds = TrainingSet(data, dim=64, seed=1)
    a = ds[0]["crop"]
    assert torch.equal(a, ds[0]["crop"])
    ds.set_epoch(5)
    ds2 = TrainingSet(data, dim=64, seed=1)
    ds2.set_epoch(5)
    assert torch.equal(ds[1]["image"], ds2[1]["image"])


def test_max_len_and_collate(synth):
    data = read_outpaint_set(synth, "train")
    ds = TrainingSet(data, dim=64, max_len=4)
    assert len(ds) == 4
    batch = collate([ds[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 64, 64) and batch["crop"].shape == (4, 4)


def test_view_sampler_contains_frame_and_fits_canvas():
    rng = np.random.default_rng(0)
    sampler = ViewSampler()
    for _ in range(500):
        W, H = int(rng.integers(50, 600)), int(rng.integers(50, 600))
        fw, fh = int(rng.integers(10, W + 1)), int(rng.integers(10, H + 1))
        frame_x, frame_y = int(rng.integers(0, W - fw + 1)), int(rng.integers(0, H - fh + 1))
        from gencrop.geometry import Box

        frame = Box(frame_x, frame_y, fw, fh)
        view, fell_back = sampler.sample(frame, W, H, rng)
        assert view.x >= 0 and view.y >= 0 and view.x2 <= W and view.y2 <= H
        assert view.contains(frame)
        if not fell_back:
            assert max(view.w, view.h) <= 2.0 * max(fw, fh) + 1


def test_view_sampler_degrades_when_frame_fills_canvas():
    from gencrop.geometry import Box

    rng = np.random.default_rng(0)
    sampler = ViewSampler()
    frame = Box(3, 2, 997, 701)  # an expert crop that is nearly the whole photo
    assert sampler.room(frame, 1000, 705) < 1.01
    views = [sampler.sample(frame, 1000, 705, rng) for _ in range(50)]
    assert all(v.contains(frame) and v.x2 <= 1000 and v.y2 <= 705 for v, _ in views)
    # an aspect that no listed ratio fits falls back to the whole canvas instead of looping
    view, fell_back = sampler.sample(Box(0, 0, 1000, 200), 1000, 210, rng)
    assert fell_back and view == Box(0, 0, 1000, 210)


def test_room_report(synth):
    ds = TrainingSet(read_outpaint_set(synth, "train"), dim=64)
    rep = ds.room_report()
    assert rep["variations"] == 12 and rep["with_room"] == 12


def test_whole_canvas_views_at_the_requested_rate():
    import numpy as np

    from gencrop.data.sampling import ViewSampler
    from gencrop.geometry import Box

    rng = np.random.default_rng(0)
    frame = Box(100, 80, 200, 150)
    sampler = ViewSampler(whole_canvas_prob=0.5)
    views = [sampler.sample(frame, 512, 400, rng)[0] for _ in range(400)]
    whole = sum(v == Box(0, 0, 512, 400) for v in views)
    assert 150 < whole < 250
    assert all(v.contains(frame) for v in views)
    assert not any(ViewSampler().sample(frame, 512, 400, rng)[0] == Box(0, 0, 512, 400) for _ in range(100))
