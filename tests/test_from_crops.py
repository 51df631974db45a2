"""`gencrop data from-crops`: annotated crops -> the training layout the reader consumes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from gencrop.cli import main
from gencrop.data.from_crops import from_crops, read_crop_annotations, split_ids
from gencrop.data.outpaint import parse_outpaint_name, read_outpaint_set
from gencrop.engine.detections import Detection
from gencrop.geometry import Box
from gencrop.io import load_npz, read_json
from gencrop.subject import SubjectFinder


def _det(x, y, w, h, score, cls):
    poly = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)
    return Detection(Box(x, y, w, h), score, cls, poly)


class FakeDetector:
    """Fixed detections in photo pixels: a dog inside every frame, a big truck outside it."""

    def __init__(self, fail_after: int | None = None):
        self.calls = 0
        self.fail_after = fail_after

    def seg(self, images, sizes=None):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt  # a killed run
        return [[_det(300, 10, 90, 100, 0.95, "truck"), _det(60, 50, 60, 40, 0.8, "dog")] for _ in images]


def _finder(**kw):
    return SubjectFinder(detector=FakeDetector(**kw), saliency=False, det_size=128)


@pytest.fixture
def photos(tmp_path):
    """Four 400 x 200 photos and FCDB-style annotations (one crop outside its photo, one photo missing)."""
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    for i in range(4):
        Image.new("RGB", (400, 200), (30 * i, 80, 120)).save(img_dir / f"{1000 + i}_ab_c.jpg")
    ann = [
        {"url": f"https://farm.example/x/{1000 + i}_ab_c.jpg", "flickr_photo_id": 1000 + i, "crop": [40, 30, 200, 150]}
        for i in range(4)
    ]
    ann[3]["crop"] = [300, 100, 200, 150]  # runs far past the photo
    ann.append({"url": "https://farm.example/x/gone.jpg", "crop": [0, 0, 10, 10]})
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(ann))
    return path, img_dir


def test_reads_fcdb_and_plain_annotations(tmp_path):
    fcdb = tmp_path / "a.json"
    fcdb.write_text(
        json.dumps(
            [
                {"url": "http://h/p/a_b.jpg", "crop": [1, 2, 3, 4]},
                {"url": "http://h/c.jpg"},
                {"url": "http://h/d.jpg", "crop": [0, 0, 0, 5]},
            ]
        )
    )
    crops, bad = read_crop_annotations(fcdb)
    assert crops == {"a_b.jpg": Box(1, 2, 3, 4)}
    assert len(bad) == 2 and "empty" in bad[1][1]
    plain = tmp_path / "b.json"
    plain.write_text(json.dumps({"x.jpg": [5, 6, 7, 8], "y.png": "nope"}))
    crops, bad = read_crop_annotations(plain)
    assert crops == {"x.jpg": Box(5, 6, 7, 8)} and bad[0][0] == "y.png"


def test_split_is_seeded_exact_and_stable():
    ids = [f"p{i}" for i in range(50)]
    a = split_ids(ids, "train", 0.2, seed=3)
    assert sum(v == "val" for v in a.values()) == 10
    assert a == split_ids(list(reversed(ids)), "train", 0.2, seed=3)
    assert a != split_ids(ids, "train", 0.2, seed=4)
    assert set(split_ids(ids, "test", 0.2).values()) == {"test"}


def test_writes_the_training_layout(photos, tmp_path):
    ann, img_dir = photos
    out = tmp_path / "data" / "toy"
    summary = from_crops(ann, img_dir, out, val_fraction=0.34, finder=_finder(), quiet=True)
    assert len(summary.done) == 3 and [k for k, _ in summary.failed] == ["1003_ab_c.jpg"]
    assert "outside" in summary.failed[0][1] and any("not in" in n for n in summary.notes)

    train, val, test = (read_json(out / f"{s}.json") for s in ("train", "val", "test"))
    # The split depends on the annotation file alone (failed and missing photos included).
    expected = split_ids([f"{1000 + i}_ab_c" for i in range(4)] + ["gone"], "train", 0.34)
    assert len(train) + len(val) == 3 and test == []
    assert all(expected[d["id"]] == s for s, ds in (("train", train), ("val", val)) for d in ds)
    entry = (train + val)[0]
    # The dog (60, 50, 60, 40) relative to the frame (40, 30, 200, 150).
    assert entry["subject_xywh"] == pytest.approx([0.1, 20 / 150, 0.3, 40 / 150])

    files = sorted(p.name for p in (out / "outpaint" / "images").iterdir())
    assert files == [f"img{1000 + i}_ab_c_40_30_200_150.jpg" for i in range(3)]
    assert all((out / "outpaint" / "images" / f).is_symlink() for f in files)
    assert parse_outpaint_name(files[0])[0] == "1000_ab_c"

    detect = read_json(out / "outpaint" / "detect.json.gz")
    masks = load_npz(out / "outpaint" / "mask.npz")
    recs = detect["img1000_ab_c_40_30_200_150"]
    assert [r["class"] for r in recs] == ["dog", "truck"]  # the subject comes first
    assert set(recs[0]) == {"xywh", "score", "class", "mask_id"} and recs[0]["xywh"] == [60, 50, 60, 40]
    assert masks[str(recs[0]["mask_id"])].shape == (4, 2)
    assert len(masks) == 6

    # The training reader matches the subject detection for every photo ...
    data = read_outpaint_set(out / "outpaint", "train", heuristic_filter=False)
    assert data.num_photos == len(train)
    for var in (v for vs in data.groups.values() for v in vs):
        assert var.subject == Box(60, 50, 60, 40) and var.crop == Box(40, 30, 200, 150)
        assert var.subject_orig.iou(var.subject) == pytest.approx(1.0)
    # ... and its heuristic filter drops them for the big truck outside the frame (reported).
    assert read_outpaint_set(out / "outpaint", "train").num_photos == 0
    assert any("3 dropped by its heuristic filter" in n for n in summary.notes)


def test_subject_only_passes_the_heuristic_filter(photos, tmp_path):
    ann, img_dir = photos
    out = tmp_path / "d"
    from_crops(ann, img_dir, out, val_fraction=0, finder=_finder(), all_detections=False, quiet=True)
    assert read_outpaint_set(out / "outpaint", "train").num_photos == 3
    assert all(len(v) == 1 for v in read_json(out / "outpaint" / "detect.json.gz").values())


def test_resumes_after_a_kill_without_duplicates(photos, tmp_path):
    ann, img_dir = photos
    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):
        from_crops(ann, img_dir, out, val_fraction=0.34, finder=_finder(fail_after=2), flush_every=1, quiet=True)
    assert not (out / "outpaint" / "detect.json.gz").exists()
    finder = _finder()
    summary = from_crops(ann, img_dir, out, val_fraction=0.34, finder=finder, quiet=True)
    assert len(summary.skipped) == 2 and len(summary.done) == 1 and finder.detector.calls == 1
    detect = read_json(out / "outpaint" / "detect.json.gz")
    assert len(detect) == 3 and len(load_npz(out / "outpaint" / "mask.npz")) == 6
    splits = {s: read_json(out / f"{s}.json") for s in ("train", "val")}
    assert sorted(d["id"] for s in splits.values() for d in s) == [f"{1000 + i}_ab_c" for i in range(3)]
    assert not list((out / "outpaint").rglob(".*tmp*")) and not (out / "outpaint" / ".segment-parts").exists()
    again = from_crops(ann, img_dir, out, val_fraction=0.34, finder=_finder(), quiet=True)
    assert len(again.done) == 0 and len(again.skipped) == 3


def test_salient_subject_is_written_as_a_detection(tmp_path):
    img_dir = tmp_path / "img"
    img_dir.mkdir()
    im = Image.new("RGB", (400, 300), (200, 200, 200))
    ImageDraw.Draw(im).ellipse((250, 60, 350, 160), fill=(220, 30, 30))
    im.save(img_dir / "disc.png")
    (tmp_path / "map.json").write_text(json.dumps({"disc.png": [200, 20, 200, 200]}))
    finder = SubjectFinder(detector=None, det_size=128)
    out = tmp_path / "s"
    summary = from_crops(tmp_path / "map.json", img_dir, out, split="test", finder=finder, quiet=True)
    assert len(summary.done) == 1
    (rec,) = read_json(out / "outpaint" / "detect.json.gz")["imgdisc_200_20_200_200"]
    assert rec["class"] == "salient" and Box.from_xywh(rec["xywh"]).iou(Box(250, 60, 100, 100)) > 0.8
    (entry,) = read_json(out / "test.json")
    assert Box.from_xywh(entry["subject_xywh"]).iou(Box(0.25, 0.2, 0.5, 0.5)) > 0.8
    assert read_outpaint_set(out / "outpaint", "test").num_photos == 1


def test_cli_reports_user_errors(tmp_path, capsys):
    (tmp_path / "a.json").write_text("[]")
    assert (
        main(["data", "from-crops", str(tmp_path / "a.json"), str(tmp_path / "nope"), "-o", str(tmp_path / "o")]) == 2
    )
    assert "no such folder" in capsys.readouterr().err
    assert main(["data", "from-crops", str(tmp_path / "a.json"), str(tmp_path), "-o", "o", "--det-size", "100"]) == 2
