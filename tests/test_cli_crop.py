"""`gencrop crop` as a newcomer meets it: early usage errors, --subjects mismatches, folder runs."""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402

from gencrop.cli import counted, main  # noqa: E402
from gencrop.geometry import Box  # noqa: E402
from gencrop.io import scan_images  # noqa: E402
from gencrop.modeling import GenCrop, GenCropConfig  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("model")
    GenCrop(GenCropConfig(arch="mobilenetv2_050", image_size=64)).save_pretrained(d)
    return d


@pytest.fixture
def photos(tmp_path):
    """a.jpg, b.png, notes.txt, .hidden.jpg and sub/c.jpg."""
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "b.png", "sub/c.jpg", ".hidden.jpg"):
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(d / name)
    (d / "notes.txt").write_text("not a photo")
    return d


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if the command gets as far as loading a model."""
    import gencrop.inference

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(gencrop.inference.Cropper, "from_pretrained", classmethod(refuse))


@pytest.fixture
def fixed_finder(monkeypatch):
    """The automatic subject finder, replaced by one that always answers the photo's left half."""
    import gencrop.subject

    def find(img, size=None, **kwargs):
        w, h = size or img.size
        return gencrop.subject.Subject(Box(0, 0, w / 2, h), None, "saliency")

    monkeypatch.setattr(gencrop.subject, "find_subject", find)


def _run(capsys, *args):
    code = main(["crop", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_counted_says_one_warning_two_warnings():
    assert counted(1, "warning") == "1 warning" and counted(2, "warning") == "2 warnings"
    assert counted(0, "entry", "entries") == "0 entries" and counted(1, "entry", "entries") == "1 entry"


def test_scan_images_counts_what_it_passes_over(photos):
    flat = scan_images(photos)
    assert [p.name for p in flat.images] == ["a.jpg", "b.png"]
    assert [p.name for p in flat.other_files] == ["notes.txt"] and [p.name for p in flat.folders] == ["sub"]
    deep = scan_images(photos, recursive=True)
    assert [p.relative_to(photos).as_posix() for p in deep.images] == ["a.jpg", "b.png", "sub/c.jpg"]
    assert deep.folders == []


def test_missing_path_is_a_usage_error_before_any_loading(photos, capsys, no_model_load):
    code, _, err = _run(capsys, photos / "a.jpg", photos / "nosuch.jpg", "--subject", "1,1,5,5")
    assert code == 2 and "no such file or folder" in err and "nosuch.jpg" in err
    assert "Traceback" not in err


def test_bad_shape_or_model_fails_once_before_loading(photos, model_dir, capsys, no_model_load):
    code, _, err = _run(capsys, photos, "--model", model_dir, "--subject", "1,1,5,5", "--area", "1.5")
    assert code == 2 and err.count("error:") == 1 and "--area" in err
    code, _, err = _run(capsys, photos, "--model", model_dir, "--subject", "1,1,5,5", "--aspect", "4:x")
    assert code == 2 and "--aspect" in err
    code, _, err = _run(capsys, photos, "--model", photos / "nomodel", "--subject", "1,1,5,5")
    assert code == 2 and "not found" in err


def test_subjects_file_mismatches_are_reported(photos, model_dir, tmp_path, capsys, fixed_finder):
    subjects = tmp_path / "s.json"
    subjects.write_text(json.dumps({"a.jpg": [10, 10, 30, 30], "zzz.jpg": [1, 1, 5, 5]}))
    code, out, err = _run(capsys, photos, "--model", model_dir, "--subjects", subjects, "--json", "--no-write", "-q")
    assert code == 1
    assert "1 entry of" in err and "zzz.jpg" in err  # a key naming no photo
    assert "1 photo without an entry" in err and "--find-missing-subjects" in err
    records = {Path(r["photo"]).name: r for r in map(json.loads, out.splitlines())}
    assert records["a.jpg"]["subject"] == [10, 10, 30, 30]
    assert "no entry in" in records["b.png"]["error"]  # not silently given an automatic subject

    code, out, err = _run(
        capsys,
        photos,
        "--model",
        model_dir,
        "--subjects",
        subjects,
        "--json",
        "--no-write",
        "-q",
        "--find-missing-subjects",
    )
    assert code == 0, err
    records = {Path(r["photo"]).name: r for r in map(json.loads, out.splitlines())}
    assert records["a.jpg"]["subject_source"] == "given"
    assert records["b.png"]["subject_source"] == "saliency" and records["b.png"]["subject"] == [0, 0, 40, 60]


def test_subjects_file_naming_none_of_the_photos_is_a_usage_error(photos, tmp_path, capsys, no_model_load):
    subjects = tmp_path / "s.json"
    subjects.write_text(json.dumps({"other.jpg": [1, 1, 5, 5]}))
    code, _, err = _run(capsys, photos, "--subjects", subjects)
    assert code == 2 and "no photo given has an entry" in err
    code, _, err = _run(capsys, photos, "--subject", "1,1,5,5", "--find-missing-subjects")
    assert code == 2 and "--subjects" in err


def test_folder_run_counts_what_it_skips_and_recurses_on_request(photos, model_dir, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, _, err = _run(capsys, photos, "--model", model_dir, "--subject", "5,5,40,40", "-o", out_dir)
    assert code == 0, err
    assert "2 of 2 photos cropped" in err
    assert "1 sub-folder (--recursive enters them)" in err and "1 file not a photo (notes.txt)" in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["a_crop.jpg", "b_crop.png"]

    code, _, err = _run(capsys, photos, "--model", model_dir, "--subject", "5,5,40,40", "-o", out_dir, "-r")
    assert code == 0, err
    assert "3 of 3 photos cropped" in err and "sub-folder" not in err
    assert (out_dir / "sub" / "c_crop.jpg").is_file()  # the folder's layout is kept under -o


def test_batches_give_the_crops_and_lines_of_one_photo_at_a_time(photos, model_dir, tmp_path, capsys):
    """--batch-size photos are prepared on threads and cropped in one pass: the same crops, files and
    lines, in the photos' order, with a broken photo and a photo without a subject entry among them."""
    (photos / "b2.jpg").write_bytes(b"not a jpeg")  # between b.png and sub/c.jpg
    subjects = tmp_path / "s.json"
    subjects.write_text(json.dumps({"a.jpg": [1, 1, 20, 20], "b2.jpg": [3, 1, 30, 20], "sub/c.jpg": [2, 3, 20, 20]}))
    runs = {}
    for batch in ("1", "2", "8"):
        out_dir = tmp_path / f"out{batch}"
        args = [photos, "-r", "--model", model_dir, "--subjects", subjects, "--aspect", "1:1", "--aspect", "3:2"]
        code, out, err = _run(capsys, *args, "--json", "-q", "-o", out_dir, "--batch-size", batch)
        assert code == 1, err  # b.png: no entry; b2.jpg: broken; .hidden.jpg is skipped
        lines = [json.loads(line) for line in out.splitlines()]
        for line in lines:
            line.pop("output", None)
        files = sorted((p.relative_to(out_dir), Image.open(p).size) for p in out_dir.rglob("*.*"))
        errors = [line.split(": ", 1)[1] for line in err.splitlines() if ": error: " in line]
        runs[batch] = (lines, files, errors)
    assert runs["2"] == runs["1"] and runs["8"] == runs["1"]
    lines, files, errors = runs["1"]
    photo_names = [line["photo"].split("photos/")[1] for line in lines]
    assert photo_names == ["a.jpg", "a.jpg", "b.png", "b2.jpg", "sub/c.jpg", "sub/c.jpg"]
    assert "no entry in" in lines[2]["error"] and "no entry" not in lines[3]["error"]  # b2.jpg: broken
    assert len(files) == 4 and len(errors) == 2
    code, _, err = _run(capsys, photos, "--model", model_dir, "--subject", "5,5,40,40", "--batch-size", "0")
    assert code == 2 and "--batch-size must be at least 1" in err


def test_subjects_file_keys_may_be_paths_inside_the_folder(photos, model_dir, tmp_path, capsys):
    subjects = tmp_path / "s.json"
    subjects.write_text(json.dumps({"a.jpg": [1, 1, 20, 20], "b.png": [1, 1, 20, 20], "sub/c.jpg": [2, 3, 20, 20]}))
    code, out, err = _run(
        capsys, photos, "-r", "--model", model_dir, "--subjects", subjects, "--json", "--no-write", "-q"
    )
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["subject"] == [2, 3, 20, 20]
    assert "warning" not in err


def test_cropper_repr_says_what_model_it_holds(model_dir):
    from gencrop.inference import Cropper

    text = repr(Cropper.from_pretrained(model_dir, device="cpu"))
    assert text.startswith("Cropper(") and "variant='gencrop'" in text and "image_size=64" in text


def test_visualization_carries_its_legend():
    from gencrop.inference import CropResult
    from gencrop.visualize import CROP_COLOR, SUBJECT_COLOR, crop_visualization

    photo = Image.new("RGB", (120, 90), (128, 128, 128))
    result = CropResult(
        box=Box(10, 10, 80, 60),
        raw_box=Box(10, 10, 80, 60),
        subject=Box(30, 20, 20, 30),
        heatmap=np.full((4, 4), 1 / 16),
        size=(120, 90),
        subject_source="saliency",
    )
    pic = np.asarray(crop_visualization(photo, result, dim=64))
    panels_height = 360  # side_by_side's height
    assert pic.shape[0] > panels_height
    key = pic[panels_height:].reshape(-1, 3)
    for color in (CROP_COLOR, SUBJECT_COLOR):
        assert (np.abs(key.astype(int) - color).sum(axis=1) < 30).any(), color
    assert key.min() < 50  # the labels' text
