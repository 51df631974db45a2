"""Data engine stages on small photo folders: formats, resume, rerun, bad inputs, sharding, kill and rerun."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gencrop.engine.caption import caption_folder
from gencrop.engine.detections import Detection
from gencrop.engine.outpaint import ClassicalOutpainter, outpaint_folder
from gencrop.engine.runner import parse_outpaint_name
from gencrop.engine.segment import DETECT_FILE, MASK_FILE, PARTS_DIR, merge_parts, segment_folder
from gencrop.engine.sharding import Shard
from gencrop.geometry import Box
from gencrop.io import load_npz, read_json

REPO = Path(__file__).resolve().parents[1]
# the classical outpainter fills canvases with OpenCV (the subject or engine extra)
needs_opencv = pytest.mark.skipif(
    importlib.util.find_spec("cv2") is None, reason="needs OpenCV (the subject or engine extra)"
)


def _photo(path: Path, size=(120, 90), seed=0, mode="RGB", exif_orientation=None):
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8))
    img = coarse.resize(size, Image.BILINEAR)  # smooth, like a photo (JPEG keeps it nearly intact)
    arr = np.asarray(img)
    if mode == "I;16":
        img = Image.fromarray((arr[..., 0].astype(np.uint16) * 257))
    elif mode != "RGB":
        img = img.convert(mode)
    kwargs = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif
    img.save(path, **kwargs)
    return path


@pytest.fixture
def photos(tmp_path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    for i, pid in enumerate(["1", "-2x", "a_b"]):
        _photo(d / f"img{pid}.jpg", seed=i)
    return d


@pytest.fixture
def bad_photos(tmp_path) -> Path:
    """Every awkward input: the good ones must be done, the bad ones fail with a reason."""
    d = tmp_path / "awkward"
    d.mkdir()
    _photo(d / "imggray.png", mode="L")
    _photo(d / "imgrgba.png", mode="RGBA")
    _photo(d / "imgcmyk.jpg", mode="CMYK")
    _photo(d / "img16bit.png", mode="I;16")
    _photo(d / "imgrotated.jpg", size=(160, 90), exif_orientation=6)
    _photo(d / "imgtiny.png", size=(20, 12))
    _photo(d / "imgpanorama.jpg", size=(900, 60))
    (d / "imgcorrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (d / "imgempty.jpg").write_bytes(b"")
    _photo(d / "notes.jpg")  # not named img<ID>
    return d


class FakeSegmenter:
    """One person in the middle of each image, a dog in the corner; counts its calls."""

    def __init__(self):
        self.seen: list[tuple[int, int]] = []

    def __call__(self, images):
        out = []
        for im in images:
            self.seen.append(im.size)
            w, h = im.size
            box = Box(w * 0.25, h * 0.25, w * 0.5, h * 0.5)
            poly = np.array([[box.x, box.y], [box.x2, box.y], [box.x2, box.y2], [box.x, box.y2]], np.float32)
            out.append([Detection(Box(0, 0, 5, 5), 0.9, "dog", poly[:3] / 10), Detection(box, 0.8, "person", poly)])
        return out


def _mtimes(folder: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


# -- caption ----------------------------------------------------------------------
def test_caption_writes_ascii_once(photos, tmp_path):
    calls = []

    def captioner(images):
        calls.append(len(images))
        return ["a café in Zürich"] * len(images)

    out = tmp_path / "cap"
    s = caption_folder(photos, out, captioner=captioner, batch_size=2, quiet=True)
    assert sorted(s.done) == ["-2x", "1", "a_b"] and calls == [2, 1]
    assert (out / "blip-2x.txt").read_bytes() == b"a cafe in Zurich"
    s = caption_folder(photos, out, captioner=captioner, quiet=True)
    assert not s.done and len(s.skipped) == 3 and calls == [2, 1]


def test_caption_bad_inputs_do_not_stop_the_batch(bad_photos, tmp_path):
    s = caption_folder(bad_photos, tmp_path / "cap", captioner=lambda ims: ["x"] * len(ims), quiet=True)
    assert sorted(s.done) == ["16bit", "cmyk", "gray", "rgba", "rotated"]
    reasons = dict(s.failed)
    assert set(reasons) == {"tiny", "panorama", "corrupt", "empty", "notes.jpg"}
    assert "too small" in reasons["tiny"] and "aspect" in reasons["panorama"]
    assert "cannot read" in reasons["corrupt"] and "not named" in reasons["notes.jpg"]
    assert all("\n" not in r for r in reasons.values())


# -- outpaint ---------------------------------------------------------------------
@needs_opencv
def test_outpaint_classical_places_the_photo_and_tops_up(photos, tmp_path):
    out = tmp_path / "out"
    s = outpaint_folder(photos, out, backend="classical", per_image=2, canvas=128, quiet=True)
    assert sorted(s.done) == ["-2x", "1", "a_b"] and not s.failed
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 6
    for name in files:
        pid, box = parse_outpaint_name(name)
        canvas = np.asarray(Image.open(out / name), np.float32)
        assert canvas.shape == (128, 128, 3)
        assert box.x2 <= 128 and box.y2 <= 128 and 0.05 < box.area / 128**2 < 0.55
        photo = Image.open(photos / f"img{pid}.jpg").convert("RGB").resize((int(box.w), int(box.h)), Image.LANCZOS)
        inside = canvas[int(box.y) : int(box.y2), int(box.x) : int(box.x2)]
        assert np.abs(inside - np.asarray(photo, np.float32)).mean() < 4  # JPEG error only

    before = _mtimes(out)
    s = outpaint_folder(photos, out, backend="classical", per_image=2, canvas=128, quiet=True)
    assert not s.done and len(s.skipped) == 3 and _mtimes(out) == before
    s = outpaint_folder(photos, out, backend="classical", per_image=3, canvas=128, quiet=True)
    assert len(list(out.iterdir())) == 9 and all(before[n] == (out / n).stat().st_mtime_ns for n in before)


@needs_opencv
def test_outpaint_resume_after_partial_run_matches_full_run(photos, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    outpaint_folder(photos, full, backend="classical", per_image=3, canvas=96, quiet=True)
    outpaint_folder(photos, part, backend="classical", per_image=3, canvas=96, quiet=True)
    victims = sorted(part.iterdir())[::2]
    for p in victims:  # as if the run had been killed before these were written ...
        p.unlink()
    (part / ".img1_0_0_9_9.abcd.tmp.jpg").write_bytes(b"\xff\xd8 half")  # ... while writing one
    outpaint_folder(photos, part, backend="classical", per_image=3, canvas=96, quiet=True)
    assert sorted(p.name for p in part.iterdir()) == sorted(p.name for p in full.iterdir())


@needs_opencv
def test_outpaint_diffusion_needs_captions_and_reports_missing_ones(photos, tmp_path):
    with pytest.raises(ValueError, match="captions"):
        outpaint_folder(photos, tmp_path / "o", backend="diffusion", quiet=True)
    cap = tmp_path / "cap"
    cap.mkdir()
    (cap / "blip1.txt").write_text("a red square")
    prompts = []

    def painter(canvases, masks, texts, seeds):
        prompts.extend(texts)
        return ClassicalOutpainter()(canvases, masks, texts, seeds)

    s = outpaint_folder(photos, tmp_path / "o", captions=cap, outpainter=painter, per_image=2, canvas=64, quiet=True)
    assert s.done == ["1"] and prompts == ["a red square"] * 2
    assert {k for k, _ in s.failed} == {"-2x", "a_b"} and "no caption blip-2x.txt" in dict(s.failed)["-2x"]


@needs_opencv
def test_outpaint_bad_inputs(bad_photos, tmp_path):
    s = outpaint_folder(bad_photos, tmp_path / "o", backend="classical", per_image=1, canvas=64, quiet=True)
    assert sorted(s.done) == ["16bit", "cmyk", "gray", "rgba", "rotated"]
    assert {k for k, _ in s.failed} == {"tiny", "panorama", "corrupt", "empty", "notes.jpg"}
    rotated = [n for n in os.listdir(tmp_path / "o") if n.startswith("imgrotated_")]
    assert len(rotated) == 1 and parse_outpaint_name(rotated[0])[1].aspect < 1  # EXIF-rotated: portrait


# -- segment ----------------------------------------------------------------------
def _canvases(tmp_path, n=5) -> Path:
    d = tmp_path / "canvases"
    d.mkdir()
    for i in range(n):
        _photo(d / f"img{i}_10_10_40_40.jpg", size=(64, 48), seed=i)
    return d


def test_segment_writes_the_paper_format(tmp_path):
    src = _canvases(tmp_path)
    seg = FakeSegmenter()
    s = segment_folder(src, tmp_path / "seg", segmenter=seg, batch_size=2, quiet=True)
    assert len(s.done) == 5 and not s.failed
    detect = read_json(tmp_path / "seg" / DETECT_FILE)
    masks = load_npz(tmp_path / "seg" / MASK_FILE)
    assert sorted(detect) == [f"img{i}_10_10_40_40" for i in range(5)]
    ids = []
    for recs in detect.values():
        assert len(recs) == 1 and set(recs[0]) == {"xywh", "score", "class", "mask_id"}
        r = recs[0]
        assert r["class"] == "person" and r["xywh"] == [16.0, 12.0, 32.0, 24.0] and r["score"] == 0.8
        poly = masks[str(r["mask_id"])]
        assert poly.dtype == np.float32 and poly.shape == (4, 2)
        ids.append(r["mask_id"])
    assert sorted(ids) == list(range(5)) and set(masks) == {str(i) for i in ids}
    assert not (tmp_path / "seg" / PARTS_DIR).exists()

    before = _mtimes(tmp_path / "seg")
    s = segment_folder(src, tmp_path / "seg", segmenter=seg, quiet=True)
    assert not s.done and len(s.skipped) == 5 and len(seg.seen) == 5 and _mtimes(tmp_path / "seg") == before

    s = segment_folder(src, tmp_path / "all", segmenter=FakeSegmenter(), classes=None, quiet=True)
    assert [r["class"] for r in read_json(tmp_path / "all" / DETECT_FILE)["img0_10_10_40_40"]] == ["dog", "person"]


def test_segment_killed_mid_run_resumes_without_duplicates(tmp_path):
    src = _canvases(tmp_path, 7)

    class Dies(FakeSegmenter):
        def __call__(self, images):
            if len(self.seen) >= 4:
                raise KeyboardInterrupt  # what a kill looks like from inside
            return super().__call__(images)

    with pytest.raises(KeyboardInterrupt):
        segment_folder(src, tmp_path / "seg", segmenter=Dies(), batch_size=2, flush_every=2, quiet=True)
    assert not (tmp_path / "seg" / DETECT_FILE).exists()
    assert len(list((tmp_path / "seg" / PARTS_DIR).glob("*.json.gz"))) == 2
    (tmp_path / "seg" / PARTS_DIR / ".part0-of-1-x.tmp.json.gz").write_bytes(b"half")
    seg = FakeSegmenter()
    s = segment_folder(src, tmp_path / "seg", segmenter=seg, batch_size=2, flush_every=2, quiet=True)
    assert len(s.skipped) == 4 and len(s.done) == 3 and len(seg.seen) == 3
    detect = read_json(tmp_path / "seg" / DETECT_FILE)
    assert len(detect) == 7 and sorted(r["mask_id"] for v in detect.values() for r in v) == list(range(7))
    assert sorted(os.listdir(tmp_path / "seg")) == [DETECT_FILE, MASK_FILE]


def test_segment_shards_merge_when_all_are_done_and_new_images_are_added(tmp_path):
    src = _canvases(tmp_path, 6)
    out = tmp_path / "seg"
    a, b = FakeSegmenter(), FakeSegmenter()
    s0 = segment_folder(src, out, segmenter=a, shard=Shard(0, 2), quiet=True)
    assert not (out / DETECT_FILE).exists()  # shard 1 has not run yet
    s1 = segment_folder(src, out, segmenter=b, shard=Shard(1, 2), quiet=True)
    assert not set(s0.done) & set(s1.done) and len(s0.done) + len(s1.done) == 6
    assert len(read_json(out / DETECT_FILE)) == 6 and not (out / PARTS_DIR).exists()

    _photo(src / "img9_1_1_30_30.jpg", size=(64, 48))
    c = FakeSegmenter()
    s = segment_folder(src, out, segmenter=c, quiet=True)
    assert s.done == ["img9_1_1_30_30"] and len(c.seen) == 1
    detect, masks = read_json(out / DETECT_FILE), load_npz(out / MASK_FILE)
    assert len(detect) == 7 and len(masks) == 7
    assert merge_parts(out, detect) is True


def test_segment_bad_inputs(bad_photos, tmp_path):
    s = segment_folder(bad_photos, tmp_path / "seg", segmenter=FakeSegmenter(), quiet=True)
    assert {k for k, _ in s.failed} == {"imgtiny", "imgpanorama", "imgcorrupt", "imgempty"}
    detect = read_json(tmp_path / "seg" / DETECT_FILE)
    assert set(detect) == {"img16bit", "imgcmyk", "imggray", "imgrgba", "imgrotated", "notes"}
    x, y, w, h = detect["imgrotated"][0]["xywh"]
    assert h > w  # detections are in upright pixels


# -- several processes --------------------------------------------------------------
def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


@needs_opencv
def test_two_processes_under_accelerate_split_a_stage(photos, tmp_path):
    """`accelerate launch --multi_gpu` starts torchrun workers (CPU-only machines too); each takes its shard.

    (`accelerate launch --cpu --num_processes 2` starts a single process unless
    an MPI host file is given; that process then does everything.)
    """
    accelerate = Path(sys.executable).with_name("accelerate")
    if not accelerate.exists():
        pytest.skip("accelerate is not installed")
    for i in range(3):
        _photo(photos / f"img{10 + i}.jpg", seed=10 + i)
    out, report = tmp_path / "out", tmp_path / "report.json"
    cmd = [
        str(accelerate),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "0",
        "-m",
        "gencrop",
        "outpaint",
        str(photos),
        "-o",
        str(out),
        "--backend",
        "classical",
        "--per-image",
        "2",
        "--canvas",
        "64",
        "-q",
        "--report",
        str(report),
    ]
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    parts = [read_json(tmp_path / f"report.part{k}-of-2.json") for k in range(2)]
    done = [set(p["done"]) for p in parts]
    assert done[0] and done[1] and not done[0] & done[1]
    assert done[0] | done[1] == {"1", "-2x", "a_b", "10", "11", "12"}
    assert len(list(out.iterdir())) == 12


@needs_opencv
def test_outpaint_killed_and_rerun_completes_the_set(photos, tmp_path):
    for i in range(9):
        _photo(photos / f"img{20 + i}.jpg", size=(400, 300), seed=20 + i)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "gencrop",
        "outpaint",
        str(photos),
        "-o",
        str(out),
        "--backend",
        "classical",
        "--per-image",
        "4",
        "--batch-size",
        "1",
        "-q",
    ]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("img*.jpg"))) < 3 and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = len(list(out.glob("img*.jpg")))
    assert 0 < first < 48, "the run should have been killed part-way"
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    names = sorted(os.listdir(out))
    assert len(names) == 48 and not [n for n in names if n.startswith(".")]
    per_photo = {}
    for n in names:
        pid, _ = parse_outpaint_name(n)
        per_photo[pid] = per_photo.get(pid, 0) + 1
    assert set(per_photo.values()) == {4}
    for n in names:
        Image.open(out / n).load()  # every file is a complete JPEG
