"""Broken data files: every command answers with one line naming the file (or a counted skip), never a traceback.

Each case writes one broken file into a copy of a small valid dataset and runs
the command in-process through ``gencrop.cli.main``: the exit code, the one
line ``gencrop <cmd>: error: <file>: ...`` and, where items are isolated, that
the good items were still processed. A seeded fuzz test mutates valid split
and detection files at random and requires a clean error or success.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gencrop.cli import main  # noqa: E402
from gencrop.data.outpaint import read_outpaint_set  # noqa: E402
from gencrop.data.training_set import TrainingSet  # noqa: E402
from gencrop.io import read_json, write_json  # noqa: E402
from gencrop.validation import DataError  # noqa: E402

from eval_layouts import synth_photo  # noqa: E402
from test_train_synth import make_dataset  # noqa: E402

TINY = ["--arch", "mobilenetv2_100", "--pretrained", "none", "--dim", "64", "--batch-size", "4", "--workers", "0", "-q"]


# ----------------------------------------------------------------------------
# broken files
# ----------------------------------------------------------------------------
def bomb_png(path: Path, side: int = 40000) -> None:
    """A PNG whose header claims side x side pixels (a decompression bomb); its data is tiny."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep))])


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> Path:
    """A valid dataset (6 photos: 4 train, 1 val, 1 test; one canvas each); copy it before breaking it."""
    root = tmp_path_factory.mktemp("valid")
    make_dataset(root, n_photos=6, per_photo=1, canvas=96, splits=(("train", 4 / 6), ("val", 1 / 6), ("test", 1 / 6)))
    return root


@pytest.fixture
def ds(valid, tmp_path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(valid, root)
    return root


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run a command in-process; an exception escaping it (a traceback) fails the test."""
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(err: str, command: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith(f"gencrop {command}: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _split(ds: Path, name: str = "train") -> list:
    return json.loads((ds / f"{name}.json").read_text())


def _write_split(ds: Path, entries, name: str = "train") -> None:
    (ds / f"{name}.json").write_text(json.dumps(entries))


def _entry1(change):
    def apply(ds: Path) -> None:
        entries = _split(ds)
        entries[1] = change(entries[1])
        _write_split(ds, entries)

    return apply


def _detect(change):
    def apply(ds: Path) -> None:
        path = ds / "outpaint" / "detect.json.gz"
        change(path)

    return apply


SPLIT_CASES = {
    "top level is a dict": (lambda ds: _write_split(ds, {"entries": _split(ds)}), "train.json: must be a JSON list"),
    "entry is a string": (_entry1(lambda e: e["id"]), "train.json: entry 1: must be an object"),
    "entry without id": (_entry1(lambda e: {"subject_xywh": e["subject_xywh"]}), 'train.json: entry 1: no "id"'),
    "entry without subject": (_entry1(lambda e: {"id": e["id"]}), 'no "subject_xywh"'),
    "subject with 3 values": (_entry1(lambda e: dict(e, subject_xywh=[0.1, 0.1, 0.5])), "subject_xywh has 3 values"),
    "subject in pixels": (_entry1(lambda e: dict(e, subject_xywh=[120, 40, 300, 200])), "looks like pixels"),
    "subject negative": (_entry1(lambda e: dict(e, subject_xywh=[-0.5, 0.1, 0.2, 0.2])), "below 0"),
    "subject NaN": (_entry1(lambda e: dict(e, subject_xywh=[math.nan, 0.1, 0.2, 0.2])), "must be finite"),
    "subject boolean": (_entry1(lambda e: dict(e, subject_xywh=[True, 0.1, 0.2, 0.2])), "must be numbers"),
    "id in train and val": (
        lambda ds: _write_split(ds, _split(ds) + _split(ds, "val")[:1]),
        'val.json: entry 0 (id "p004"): id also in train.json',
    ),
    "malformed JSON": (lambda ds: (ds / "train.json").write_text('[{"id": "p000", '), "train.json: not valid JSON"),
    "detect truncated": (_detect(truncate), "detect.json.gz: truncated or corrupt gzip"),
    "detect plain JSON": (_detect(lambda p: p.write_text(json.dumps(read_json(p)))), "detect.json.gz: not gzip"),
    "detect garbage": (_detect(lambda p: p.write_bytes(b"\x1f\x8bgarbage" * 10)), "detect.json.gz: truncated"),
    "detect is a list": (
        _detect(lambda p: write_json(p, list(read_json(p).values()))),
        "detect.json.gz: must map image names",
    ),
    "detect without xywh": (_detect(lambda p: write_json(p, {k: [{"score": 1}] for k in read_json(p)})), 'no "xywh"'),
    "mask truncated": (lambda ds: truncate(ds / "outpaint" / "mask.npz", 0.6), "mask.npz: not a readable .npz"),
    "mask garbage": (
        lambda ds: (ds / "outpaint" / "mask.npz").write_bytes(b"PK\x03\x04" + b"x" * 200),
        "mask.npz: not a readable .npz",
    ),
}


@pytest.mark.parametrize("case", sorted(SPLIT_CASES))
def test_train_and_own_eval_name_the_bad_file(ds, case, tmp_path, capsys):
    """`gencrop train` and `gencrop eval --dataset` stop with one line naming the file (exit 1), before any work."""
    pytest.importorskip("accelerate")  # the train extra
    breaker, expected = SPLIT_CASES[case]
    breaker(ds)
    code, _, err = run(["train", ds / "outpaint", "-o", tmp_path / "run", "--epochs", "1", *TINY], capsys)
    line = one_error_line(err, "train")
    assert code == 1 and expected in line, line
    assert not (tmp_path / "run" / "loss.json").exists()
    if case.startswith(("detect", "mask", "malformed")):
        # the test split reads the same detection files; the split files are checked together
        code, _, err = run(["eval", "--method", "identity", "--dataset", ds / "outpaint", "-q"], capsys)
        assert code == 1 and expected in one_error_line(err, "eval")


def test_null_subject_is_one_rule_for_training_and_evaluation(ds, capsys):
    """A photo whose subject is null: the whole view is its subject (training and own-split evaluation alike)."""
    from gencrop.data.benchmarks import WHOLE_VIEW, load_own_test

    test = _split(ds, "test")
    _write_split(ds, [dict(e, subject_xywh=None) for e in test], "test")
    bench = load_own_test(ds / "outpaint")
    (photo,) = bench.photos
    assert photo.subject == type(photo.subject)(0, 0, photo.view.w, photo.view.h)
    assert photo.mask_source == WHOLE_VIEW and not photo.subject_mask(20, 10).any()

    data = read_outpaint_set(ds / "outpaint", "test")
    item = TrainingSet(data, 64, use_subject=True, augment=False)[0]
    assert torch.equal(item["subject"], item["valid"]) and not item["image"][3].any()
    code, out, _ = run(["eval", "--method", "subject", "--dataset", ds / "outpaint", "-q"], capsys)
    assert code == 0 and "1 " in out


def test_own_eval_reports_test_photos_without_a_usable_canvas(ds, capsys):
    test = _split(ds, "test")
    _write_split(ds, test + [{"id": "ghost", "subject_xywh": None}], "test")
    code, out, err = run(["eval", "--method", "identity", "--dataset", ds / "outpaint", "-q"], capsys)
    assert code == 0 and "1 annotated photos are not scored" in err and "skipped id ghost: no canvas" in err


def test_train_skips_unreadable_canvases_and_reports_missing_masks(ds, tmp_path, capsys):
    """Zero-byte and decompression-bomb canvases are skipped and counted; missing masks are announced."""
    pytest.importorskip("accelerate")  # the train extra
    images = ds / "outpaint" / "images"
    ids = [e["id"] for e in _split(ds)]
    empty = next(images.glob(f"img{ids[0]}_*"))
    empty.write_bytes(b"")
    bomb = next(images.glob(f"img{ids[1]}_*"))
    bomb.unlink()
    bomb_png(bomb.with_suffix(".png"))
    (ds / "outpaint" / "mask.npz").unlink()
    run_dir = tmp_path / "run"
    code, _, err = run(["train", ds / "outpaint", "-o", run_dir, "--epochs", "1", "--use-subject", *TINY], capsys)
    assert code == 0, err
    assert "2 unreadable canvases skipped" in err and "empty file" in err
    assert "subjects have no mask" in err and "mask.npz missing" in err
    history = json.loads((run_dir / "loss.json").read_text())
    assert [h["epoch"] for h in history] == [1] and math.isfinite(history[0]["train_loss"])
    # the two good photos were trained on
    assert "2 photos, 2 variations kept" in read_outpaint_set(ds / "outpaint").summary()


def test_resume_with_fewer_epochs_than_done_is_refused(ds, tmp_path, capsys):
    pytest.importorskip("accelerate")  # the train extra
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"epoch": 3}, run_dir / "training_state.pt")  # what a run of 3 epochs leaves (its epoch count)
    code, _, err = run(["train", ds / "outpaint", "-o", run_dir, "--epochs", "2", "--resume", *TINY], capsys)
    assert code == 2 and "--epochs 2 but" in one_error_line(err, "train") and "already holds 3 epochs" in err


def test_a_canvas_that_breaks_during_training_is_replaced(ds, capsys):
    """A canvas whose header reads but whose data is cut is replaced by the next example, with a warning."""
    data = read_outpaint_set(ds / "outpaint", "train")
    ts = TrainingSet(data, 64, augment=False)
    first = data.image_dir / ts._items[0].variation.img_file
    truncate(first, 0.3)
    items = [ts[i] for i in range(len(ts))]
    assert [float(it["replaced"]) for it in items] == [1.0, 0.0, 0.0, 0.0]
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and first.name in err


def test_help_shows_no_default_for_switches(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--no-bad-filter also train on canvases listed in outpaint/bad.json --no-heuristic" in text
    assert "(default: True)" not in text and "(default: 256)" in text


# ----------------------------------------------------------------------------
# benchmarks
# ----------------------------------------------------------------------------
@pytest.fixture
def fcdb(tmp_path) -> Path:
    """The official FCDB layout: cropping_testing_set.json + images/, three 80 x 60 photos."""
    folder = tmp_path / "bench" / "FCDB"
    entries = []
    for i in range(3):
        synth_photo(folder / "images" / f"p{i}.jpg", (80, 60), seed=i)
        entries.append({"url": f"http://x/p{i}.jpg", "crop": [10, 5, 50, 40]})
    (folder / "cropping_testing_set.json").write_text(json.dumps(entries))
    return folder


FCDB_CASES = {
    "crop is a string": (lambda e: e[1].update(crop="10,5,50,40"), 2, "entry 1: crop must be a list of 4 numbers"),
    "crop has 3 values": (lambda e: e[1].update(crop=[10, 5, 50]), 2, "entry 1: crop has 3 values"),
    "crop missing": (lambda e: e[1].pop("crop"), 2, 'entry 1: no "crop"'),
    "url missing": (lambda e: e[1].pop("url"), 2, 'entry 1: no "url"'),
    "negative size": (lambda e: e[1].update(crop=[10, 5, -50, 40]), 2, "entry 1: crop has no area"),
}


@pytest.mark.parametrize("case", sorted(FCDB_CASES))
def test_benchmark_annotations_name_the_entry(fcdb, case, capsys):
    change, _, expected = FCDB_CASES[case]
    path = fcdb / "cropping_testing_set.json"
    entries = json.loads(path.read_text())
    change(entries)
    path.write_text(json.dumps(entries))
    code, _, err = run(
        ["eval", "--method", "identity", "-b", "fcdb", "--data-root", fcdb.parent, "--all-images", "-q"], capsys
    )
    line = one_error_line(err, "eval")
    assert code == 1 and "cropping_testing_set.json" in line and expected in line, line


def test_benchmark_top_level_dict_and_crops_outside_the_photo(fcdb, capsys):
    path = fcdb / "cropping_testing_set.json"
    entries = json.loads(path.read_text())
    path.write_text(json.dumps({"entries": entries}))
    code, _, err = run(
        ["eval", "--method", "identity", "-b", "fcdb", "--data-root", fcdb.parent, "--all-images", "-q"], capsys
    )
    assert code == 1 and "cropping_testing_set.json: must be a JSON list" in one_error_line(err, "eval")

    entries[1]["crop"] = [5000, 5000, 100, 100]
    entries[2]["crop"] = [-1, 0, 81, 61]  # a pixel of rounding overshoot is kept, as the published tools do
    path.write_text(json.dumps(entries))
    report = fcdb.parent / "report"
    code, out, err = run(
        ["eval", "--method", "identity", "-b", "fcdb", "--data-root", fcdb.parent, "--all-images", "-q", "-o", report],
        capsys,
    )
    assert code == 0 and "1 annotated photos are not scored" in err
    assert "skipped p1.jpg: ground truth crop [5000.0, 5000.0, 100.0, 100.0]" in err and "outside the 80x60" in err
    assert "identity, 2 photos" in out  # the good photos are scored, the impossible one is not
    summary = json.loads((report / "summary.json").read_text())
    assert summary["num_images"] == 2 and summary["info"]["not_scored"][0].startswith("p1.jpg: ground truth")


# ----------------------------------------------------------------------------
# data engine
# ----------------------------------------------------------------------------
@pytest.fixture
def seg_dir(tmp_path) -> tuple[Path, Path]:
    """Three canvases and a complete segmentation of them (as `gencrop segment` writes it)."""
    from test_engine_stages import FakeSegmenter

    from gencrop.engine.segment import segment_folder

    src = tmp_path / "canvases"
    for i in range(3):
        synth_photo(src / f"img{i}_10_10_40_40.jpg", (64, 48), seed=i)
    segment_folder(src, tmp_path / "seg", segmenter=FakeSegmenter(), quiet=True)
    return src, tmp_path / "seg"


SEGMENT_CASES = {
    "detect truncated": (lambda d: truncate(d / "detect.json.gz"), "detect.json.gz: truncated or corrupt gzip"),
    "detect plain JSON": (
        lambda d: (d / "detect.json.gz").write_text(json.dumps(read_json(d / "detect.json.gz"))),
        "detect.json.gz: not gzip-compressed",
    ),
    "mask truncated": (lambda d: truncate(d / "mask.npz", 0.6), "mask.npz: not a readable .npz"),
    "mask missing": (lambda d: (d / "mask.npz").unlink(), "mask.npz: detect.json.gz is there but mask.npz is missing"),
}


@pytest.mark.parametrize("case", sorted(SEGMENT_CASES))
def test_segment_rerun_over_broken_results(seg_dir, case, capsys):
    src, out = seg_dir
    breaker, expected = SEGMENT_CASES[case]
    breaker(out)
    code, _, err = run(["segment", src, "-o", out, "-q"], capsys)
    line = one_error_line(err, "segment")
    assert code == 1 and expected in line and "to segment again" in line, line


def test_outpaint_isolates_a_decompression_bomb(tmp_path, capsys):
    pytest.importorskip("cv2")  # OpenCV: the subject or engine extra
    photos = tmp_path / "photos"
    for pid in ("a", "b"):
        synth_photo(photos / f"img{pid}.jpg", (80, 60))
    bomb_png(photos / "imgbomb.png")
    out = tmp_path / "out"
    code, stdout, _ = run(
        ["outpaint", photos, "-o", out, "--backend", "classical", "--per-image", "1", "--canvas", "64"], capsys
    )
    assert code == 0 and "2 done" in stdout and "failed bomb:" in stdout and "decompression bomb" in stdout
    assert sorted(p.name.split("_")[0] for p in out.iterdir()) == ["imga", "imgb"]


def test_from_crops_names_the_file_and_gives_honest_reasons(tmp_path, capsys):
    photos = tmp_path / "photos"
    synth_photo(photos / "p.jpg", (80, 60))
    ann = tmp_path / "crops.json"
    ann.write_text('[{"url": "p.jpg", "crop": [1, 2')
    code, _, err = run(["data", "from-crops", ann, photos, "-o", tmp_path / "o", "-q"], capsys)
    assert code == 1 and f"{ann}: not valid JSON" in one_error_line(err, "data")

    ann.write_text(json.dumps([{"crop": [1, 2, 30, 30]}, {"url": "p.jpg", "crop": [1, 2, 30]}]))
    code, out, err = run(["data", "from-crops", ann, photos, "-o", tmp_path / "o"], capsys)
    assert code == 1 and "Traceback" not in err
    assert 'entry 0: no "url"' in out and "crop has 3 values" in out
    assert "parts kept" not in out and "not in" not in out


def test_dataset_check_reads_the_photos_and_from_crops_datasets(ds, tmp_path, capsys):
    images = ds / "outpaint" / "images"
    test_id = _split(ds, "test")[0]["id"]
    next(images.glob(f"img{test_id}_*")).write_bytes(b"")
    code, out, _ = run(["dataset", "check", ds], capsys)  # canvases found in outpaint/images
    assert code == 1 and f"test.json (id '{test_id}')" in out and "empty file" in out
    assert "1 error," in out and "photos not checked" not in out


# ----------------------------------------------------------------------------
# outputs
# ----------------------------------------------------------------------------
def _commands(ds: Path, tmp_path: Path, out: Path) -> dict[str, list]:
    photos = tmp_path / "photos"
    synth_photo(photos / "imga.jpg", (80, 60))
    return {
        "crop": ["crop", photos / "imga.jpg", "--subject", "1,1,20,20", "-o", out],
        "train": ["train", ds / "outpaint", "-o", out, *TINY],
        "view-train": ["view-train", ds / "outpaint", "--out", out / "sheet.png"],
        "eval": ["eval", "--method", "identity", "--dataset", ds / "outpaint", "-o", out, "-q"],
        "segment": ["segment", photos, "-o", out, "-q"],
        "outpaint": ["outpaint", photos, "-o", out, "--backend", "classical", "-q"],
        "caption": ["caption", photos, "-o", out, "--captioner", "labels", "-q"],
        "data": ["data", "from-crops", tmp_path / "crops.json", photos, "-o", out, "-q"],
        "quality": ["quality", photos, "--model", tmp_path, "-o", out / "bad.json", "-q"],
    }


@pytest.mark.parametrize(
    "command", ["crop", "train", "view-train", "eval", "segment", "outpaint", "caption", "data", "quality"]
)
def test_unwritable_output_is_refused_before_any_work(ds, tmp_path, command, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    (tmp_path / "crops.json").write_text(json.dumps({"imga.jpg": [1, 1, 40, 40]}))
    argv = _commands(ds, tmp_path, blocker / "out")[command]
    code, _, err = run(argv, capsys)
    line = one_error_line(err, command)
    assert code == 2 and f"{blocker}: is a file, not a folder" in line, line


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root writes into read-only folders")
def test_read_only_output_is_refused(ds, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, _, err = run(["eval", "--method", "identity", "--dataset", ds / "outpaint", "-o", ro / "r"], capsys)
        assert code == 2 and f"{ro / 'r'}: cannot be made inside {ro}" in one_error_line(err, "eval")
    finally:
        ro.chmod(0o755)


# ----------------------------------------------------------------------------
# fuzz
# ----------------------------------------------------------------------------
JUNK = [None, "", "abc", -1, 0, 1e9, math.nan, True, [], {}, [1, 2, 3], [0.1, 0.1, 0.5, 0.5], [-0.2, 0.1, 2, 2]]


def _mutate(value, rng: np.random.Generator):
    """One random change somewhere in a JSON value: replace, delete or duplicate a part."""
    if isinstance(value, (list, dict)) and len(value) and rng.random() < 0.75:
        keys = list(range(len(value))) if isinstance(value, list) else list(value)
        key = keys[int(rng.integers(len(keys)))]
        action = rng.random()
        if action < 0.15:
            if isinstance(value, list):
                value.insert(int(key), json.loads(json.dumps(value[key])))
            else:
                del value[key]
            return value
        value[key] = _mutate(value[key], rng)
        return value
    return JUNK[int(rng.integers(len(JUNK)))]


@pytest.mark.parametrize("seed", range(4))
def test_fuzzed_split_and_detection_files_never_crash(valid, tmp_path, seed, capsys):
    """Random damage to train/test.json and detect.json.gz: a clean error (exit 1/2) or success, never a traceback."""
    rng = np.random.default_rng(seed)
    outcomes = []
    for trial in range(10):
        root = tmp_path / f"t{trial}"
        shutil.copytree(valid, root)
        target = ["train.json", "test.json", "outpaint/detect.json.gz"][int(rng.integers(3))]
        path = root / target
        if rng.random() < 0.2:  # cut the file short
            truncate(path, float(rng.uniform(0.1, 0.9)))
        else:
            data = read_json(path)
            for _ in range(int(rng.integers(1, 4))):
                data = _mutate(data, rng)
            text = json.dumps(data)
            path.write_bytes(gzip.compress(text.encode()) if target.endswith(".gz") else text.encode())
        code, _, err = run(["eval", "--method", "identity", "--dataset", root / "outpaint", "-q"], capsys)
        assert code in (0, 1, 2) and "Traceback" not in err
        if code:
            one_error_line(err, "eval")
        if target != "test.json":
            try:
                read_outpaint_set(root / "outpaint", "train")
            except (DataError, FileNotFoundError) as e:
                assert str(e) and "\n" not in str(e)
        outcomes.append(code)
    assert 1 in outcomes, outcomes  # the damage was seen (each seed hits some)
