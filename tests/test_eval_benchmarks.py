"""Benchmark loaders on their published layouts (shared photos and annotations, or synthetic photos)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from eval_layouts import (
    cpc_root,
    fcdb_root,
    flms_root,
    gaicd_root,
    sacd_root,
    synth_photo,
    unsplash_layout,
    write_detections,
)
from gencrop.data.benchmarks import (
    BenchmarkError,
    attach_detection_masks,
    load_benchmark,
    load_own_test,
    segment_command,
)
from gencrop.geometry import Box


def test_fcdb_test_split_from_shared_photos(shared_data, tmp_path):
    names = fcdb_root(shared_data, tmp_path)
    crops = json.loads((shared_data / "hcic" / "FCDB" / "image_crop.json").read_text())
    split = json.loads((shared_data / "hcic" / "FCDB" / "data_split.json").read_text())
    b = load_benchmark("fcdb", tmp_path, all_images=True)
    assert [p.name for p in b.photos] == names
    for p in b.photos:
        assert p.gts == [Box.from_xywh(crops[p.name])] and p.subject is None
    assert len(b.missing) == len([n for n in split["test"] if n in crops]) - len(names)


def test_fcdb_human_centric_photos_are_reported_missing(shared_data, tmp_path):
    """The shared folder leaves out the 176 human-centric photos: all are reported, none invented."""
    fcdb_root(shared_data, tmp_path)
    b = load_benchmark("fcdb", tmp_path)
    assert b.photos == [] and len(b.missing) == 176


def test_fcdb_human_centric_subset(shared_data, tmp_path):
    """The human-centric path (train + test photos with a person box) on photos that are shared:
    person boxes written for them (xyxy, as published), crops as published."""
    names = fcdb_root(shared_data, tmp_path, n_photos=3)
    folder = tmp_path / "FCDB"
    split = json.loads((folder / "data_split.json").read_text())
    train = next(n for n in split["train"] if (shared_data / "fcdb" / "images" / n).is_file())
    (folder / "data" / train).symlink_to(shared_data / "fcdb" / "images" / train)
    humans = {n: [10, 20, 110, 220] for n in names[:2] + [train]}
    (folder / "human_bboxes.json").write_text(json.dumps(humans))
    b = load_benchmark("fcdb", tmp_path)
    assert sorted(p.name for p in b.photos) == sorted(humans)  # train photos count too
    assert all(p.subject == Box(10, 20, 100, 200) for p in b.photos)


def test_fcdb_official_layout(shared_data):
    """The shared folder itself (official annotations + images/) as --all-images FCDB."""
    b = load_benchmark("fcdb", shared_data, all_images=True)
    tests = json.loads((shared_data / "fcdb" / "cropping_testing_set.json").read_text())
    assert 250 < len(b.photos) <= len(tests)
    first = next(d for d in tests if d["url"].rsplit("/", 1)[-1] == b.photos[0].name)
    assert b.photos[0].gts == [Box.from_xywh(first["crop"])]
    with pytest.raises(BenchmarkError, match="--all-images"):
        load_benchmark("fcdb", shared_data)


def test_gaicd_samples(shared_data, tmp_path):
    gaicd_root(shared_data, tmp_path)
    crops = json.loads((shared_data / "hcic" / "GAICD" / "image_crop.json").read_text())
    humans = json.loads((shared_data / "hcic" / "GAICD" / "human_bboxes.json").read_text())
    b = load_benchmark("gaicd", tmp_path)
    assert sorted(p.name for p in b.photos) == ["297406.jpg", "302166.jpg"] and len(b.missing) == 48
    for p in b.photos:
        assert len(p.gts) == len(crops[p.name]["bbox"])
        assert p.gts[0] == Box.from_xyxy(*crops[p.name]["bbox"][0])
        assert p.subject == Box.from_xyxy(*humans[p.name])
    every = load_benchmark("gaicd", tmp_path, all_images=True)
    assert all(p.subject is None for p in every.photos)


def test_flms_and_flms_fcdb(shared_data, tmp_path):
    names = flms_root(shared_data, tmp_path)
    fcdb_root(shared_data, tmp_path, n_photos=2)
    b = load_benchmark("flms", tmp_path)
    assert [p.name for p in b.photos] == names[:2]
    crops = json.loads((tmp_path / "FLMS" / "image_crop.json").read_text())
    assert b.photos[0].gts == [Box.from_xyxy(*c) for c in crops[names[0]]]
    assert len(load_benchmark("flms", tmp_path, all_images=True).photos) == 3
    both = load_benchmark("flms+fcdb", tmp_path, all_images=True)
    assert len(both.photos) == 5 and both.photos[0].name == "FLMS/" + sorted(names)[0]
    assert any(p.name.startswith("FCDB/") for p in both.photos)


def test_cpc_first_crop_is_ground_truth(shared_data, tmp_path):
    names = cpc_root(shared_data, tmp_path)
    b = load_benchmark("cpc", tmp_path)
    crops = json.loads((tmp_path / "CPCDataset" / "image_crop.json").read_text())
    humans = json.loads((tmp_path / "CPCDataset" / "human_bboxes.json").read_text())
    assert [p.name for p in b.photos] == names
    for p in b.photos:
        assert p.gts == [Box.from_xyxy(*crops[p.name]["bboxes"][0])]
        assert p.subject == Box.from_xyxy(*humans[p.name]["bbox"])


def test_sacd_links_and_loader(tmp_path):
    folder = sacd_root(tmp_path)
    with pytest.raises(BenchmarkError, match="gencrop sacd-links"):
        load_benchmark("sacd", tmp_path)
    cmd = [sys.executable, "-m", "gencrop", "sacd-links", str(folder)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "3 links made" in out.stdout, out.stderr
    assert "0 links made, 3 already there" in subprocess.run(cmd, capture_output=True, text=True).stdout
    assert (folder / "images-sym" / "p01_1.jpg").resolve() == (folder / "images" / "p01.jpg").resolve()

    b = load_benchmark("sacd", tmp_path)
    assert [p.name for p in b.photos] == ["p01_0.jpg", "p01_1.jpg", "p02_0.jpg"]
    p = b.photos[0]
    assert p.subject == Box(40, 60, 80, 120)  # mask_box is xywh
    assert p.gts == [
        Box.from_xyxy(20, 30, 250, 220),
        Box.from_xyxy(10, 10, 300, 230),
        Box.from_xyxy(30, 40, 200, 200),
    ]  # best_box first, then crop_box
    mask = p.subject_mask(320, 240)
    assert mask[100, 50] and not mask[100, 110]  # the mask image, not the box
    assert len(b.photos[2].gts) == 1


def test_unsplash_loader(shared_data, tmp_path):
    ds, imgs, recs = unsplash_layout(shared_data, tmp_path)
    b = load_benchmark("unsplash", dataset=ds, images=imgs)
    assert len(b.photos) == 2 and b.missing == ["imgnot-downloaded.jpg"]
    byname = {p.name: p for p in b.photos}
    for i, rec in enumerate(recs):
        p = byname[f"img-fake{i}_x.jpg"]
        W, H = Image.open(p.path).size
        x, y, w, h = rec["crop_xywh"][0]
        assert p.gts[0].xywh == pytest.approx((x * W, y * H, w * W, h * H))
        assert len(p.gts) == len(rec["crop_xywh"])
        sx, sy, sw, sh = rec["subject_xywh"]
        assert p.subject.xywh == pytest.approx((sx * W, sy * H, sw * W, sh * H))
        m = p.subject_mask(W, H)
        assert m.shape == (H, W) and m.any()
        ys, xs = np.nonzero(m)  # the stored mask agrees with the stored subject box
        assert Box.from_xyxy(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1).iou(p.subject) > 0.8
    with pytest.raises(BenchmarkError, match="--dataset"):
        load_benchmark("unsplash", dataset=ds)


def test_detection_masks_best_overlap_else_box(shared_data, tmp_path):
    gaicd_root(shared_data, tmp_path)
    folder = tmp_path / "GAICD"
    b = load_benchmark("gaicd", tmp_path)
    matched, unmatched, missing = attach_detection_masks(b)
    assert (matched, unmatched) == (0, 0) and {f.name for f in missing} == {"detect.json.gz", "mask.npz"}
    assert segment_command(b) == f"gencrop segment {folder / 'images'} -o {folder} --backend yolov7"

    subj = {p.name: p.subject for p in b.photos}
    s = subj["297406.jpg"]
    near = [s.x + 5, s.y + 5, s.w - 10, s.h - 10]
    far = [0, 0, 30, 30]
    tri = [[near[0], near[1]], [near[0] + near[2], near[1]], [near[0], near[1] + near[3]]]
    write_detections(
        folder,
        {"297406": [(far, [[0, 0], [30, 0], [0, 30]]), (near, tri)], "302166": [(far, [[0, 0], [30, 0], [0, 30]])]},
    )
    b = load_benchmark("gaicd", tmp_path)
    assert attach_detection_masks(b)[:2] == (1, 1)
    p = next(p for p in b.photos if p.name == "297406.jpg")
    assert p.mask_source == "detection" and np.allclose(p.mask_polygon, tri)
    m = p.subject_mask(1024, 744)
    assert m[int(near[1]) + 3, int(near[0]) + 3] and not m[int(near[1] + near[3]) - 3, int(near[0] + near[2]) - 3]
    q = next(p for p in b.photos if p.name == "302166.jpg")
    assert q.mask_polygon is None and q.subject_mask(1024, 682).sum() == pytest.approx(q.subject.area, rel=0.02)


def _own_dataset(root):
    """data/own/{test.json, outpaint/{images, detect.json.gz, mask.npz}}: canvases with known frames."""
    out = root / "own" / "outpaint"
    split, dets = [], {}
    for i in range(4):
        pid = f"p{i}"
        split.append({"id": pid, "subject_xywh": [0.25, 0.2, 0.5, 0.6]})
        for j, (x, y, w, h) in enumerate([(60, 50, 120, 160), (30, 40, 200, 150)]):
            name = f"img{pid}_{x}_{y}_{w}_{h}"
            synth_photo(out / "images" / f"{name}.jpg", (320, 280), seed=i * 2 + j)
            sx, sy, sw, sh = x + 0.25 * w, y + 0.2 * h, 0.5 * w, 0.6 * h
            dets[name] = [([sx, sy, sw, sh], [[sx, sy], [sx + sw, sy], [sx + sw, sy + sh], [sx, sy + sh]])]
    (root / "own" / "test.json").write_text(json.dumps(split))
    write_detections(out, dets)
    return out


def test_own_test_split_views_are_seeded(tmp_path):
    out = _own_dataset(tmp_path)
    a, b = load_own_test(out, seed=0), load_own_test(out, seed=0)
    assert len(a.photos) == 4
    assert [(p.name, p.view) for p in a.photos] == [(p.name, p.view) for p in b.photos]
    c = load_own_test(out, seed=1)
    assert [p.view for p in a.photos] != [p.view for p in c.photos]
    for p in a.photos:
        gt = p.gts[0]
        assert Box(0, 0, p.view.w, p.view.h).contains(gt)  # the frame is inside the view
        assert Box(0, 0, 320, 280).contains(p.view)
        long_ratio = max(p.view.w, p.view.h) / max(gt.w, gt.h)
        assert 1.0 <= long_ratio <= 2.0 + 1e-6
        assert p.subject is not None and p.mask_source == "detection"
        m = p.subject_mask(int(p.view.w), int(p.view.h))
        assert m.sum() == pytest.approx(p.subject.area, rel=0.1)


def test_unknown_or_incomplete_requests(tmp_path):
    with pytest.raises(BenchmarkError, match="--data-root"):
        load_benchmark("fcdb", None)
    with pytest.raises(BenchmarkError, match="no FCDB folder"):
        load_benchmark("fcdb", tmp_path)
    with pytest.raises(BenchmarkError, match="--dataset"):
        load_benchmark(None)


def test_found_subjects_fill_photos_without_one(shared_data):
    """--find-subjects: photos with no annotated subject get the finder's box and polygon."""
    import numpy as np

    from gencrop.evaluation.subjects import attach_found_subjects
    from gencrop.subject import Subject

    b = load_benchmark("fcdb", shared_data, all_images=True)
    b.photos = b.photos[:3]
    assert all(p.subject is None for p in b.photos)
    seen = []

    def finder(img, size, frame=None, detections=None):
        seen.append(size)
        w, h = size
        poly = np.array([[w * 0.3, h * 0.3], [w * 0.6, h * 0.3], [w * 0.6, h * 0.8]], np.float32)
        return Subject(box=Box(w * 0.3, h * 0.3, w * 0.3, h * 0.5), mask=None, source="detection", polygon=poly)

    assert attach_found_subjects(b, finder=finder) == 3
    for p, size in zip(b.photos, seen):
        assert size == Image.open(p.path).size  # photo pixels, even from a reduced decode
        assert p.subject.xywh == pytest.approx((size[0] * 0.3, size[1] * 0.3, size[0] * 0.3, size[1] * 0.5))
        mask = p.subject_mask(*size)
        assert mask.sum() > 0 and not mask[0, 0] and p.mask_source == "found (detection)"
