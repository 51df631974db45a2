"""Cropper: photo preparation, mapping back to photo pixels, subjects, batches, CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402

from gencrop.data.letterbox import Letterbox, letterbox_image  # noqa: E402
from gencrop.geometry import Box  # noqa: E402
from gencrop.inference import Cropper, SubjectRequired  # noqa: E402
from gencrop.modeling import GenCrop, GenCropConfig  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("model")
    GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=64, transpose_anchors=False)).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def cropper(model_dir):
    return Cropper.from_pretrained(model_dir, device="cpu", subject_finder=_no_finder)


def _no_finder(img, size):
    from gencrop.subject import SubjectNotFound

    raise SubjectNotFound("no finder in this test")


def test_letterbox_geometry_roundtrip():
    lb = Letterbox(400, 200, 64)
    assert lb.resized == (64, 32) and lb.offset == (0, 16)
    assert lb.valid.xywh == (0, 16, 64, 32)
    b = Box(100, 50, 200, 100)
    assert lb.to_photo(lb.to_input(b)).xywh == pytest.approx(b.xywh)
    arr, lb2 = letterbox_image(Image.new("RGB", (400, 200), (255, 0, 0)), 64)
    assert arr.shape == (3, 64, 64) and lb2 == lb
    assert np.all(arr[:, :16] == 0) and np.all(arr[:, 48:] == 0)  # zero padding
    assert arr[0, 30, 30] == pytest.approx((1 - 0.485) / 0.229, rel=1e-5)


@pytest.mark.parametrize("size", [(300, 200), (120, 400), (64, 64)])
def test_crop_is_inside_photo(cropper, size):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    res = cropper.crop(img, subject=(size[0] * 0.3, size[1] * 0.2, size[0] * 0.3, size[1] * 0.5))
    assert res.size == size
    assert Box(0, 0, *size).contains(res.box) and not res.box.is_empty()
    g = cropper.dim // 16
    assert res.heatmap.shape == (g, g) and res.heatmap.sum() == pytest.approx(1, abs=1e-5)


def test_prediction_maps_back_through_letterbox(cropper):
    """The box returned is the network output mapped by the letterbox inverse."""
    img = Image.new("RGB", (320, 160), (90, 120, 30))
    subject = Box(100, 40, 60, 80)
    res = cropper.crop(img, subject=subject)
    arr, lb = letterbox_image(img, 64)
    with torch.no_grad():
        out = cropper.model(torch.from_numpy(arr)[None], torch.tensor([lb.to_input(subject).xyxy], dtype=torch.float32))
    expect = lb.to_photo(Box.from_xyxy(*(out.crop[0].numpy() * 64)))
    assert res.raw_box.xywh == pytest.approx(expect.xywh, abs=1e-3)


def test_input_kinds_agree(cropper, tmp_path):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 255, (90, 150, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    subject = (30, 20, 50, 40)
    a = cropper.crop(tmp_path / "a.png", subject=subject).box
    b = cropper.crop(Image.fromarray(arr), subject=subject).box
    c = cropper.crop(arr, subject=subject).box
    assert a == b == c


def test_cut_keeps_the_full_decode_and_cuts_the_crop(cropper, tmp_path):
    """The write path (``cut=True``): the same crop as without, the full-size upright photo, and the crop
    cut out of it."""
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 255, (600, 900, 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 8  # rotate 270 on display: the full decode must come back upright too
    img.save(tmp_path / "big.jpg", quality=95, exif=exif)
    subject = (100, 200, 300, 250)
    res = cropper.crop(tmp_path / "big.jpg", subject=subject, cut=True)
    full = res.photo
    assert full.size == res.size == (600, 900)
    assert res.box.xywh == cropper.crop(tmp_path / "big.jpg", subject=subject).box.xywh
    cut = res.cut(full)
    b = res.box.rounded()
    assert cut.size == (int(b.w), int(b.h))
    assert np.array_equal(np.asarray(cut), np.asarray(full)[int(b.y) : int(b.y2), int(b.x) : int(b.x2)])
    # in-memory photos take the same path without a thread
    res2 = cropper.crop(arr, subject=subject, cut=True)
    full2 = res2.photo
    assert full2.size == (900, 600) and res2.cut(full2).size == (int(res2.box.rounded().w), int(res2.box.rounded().h))
    # a cut needs the image the crop is for
    with pytest.raises(ValueError, match="900x600"):
        res2.cut(full)
    # the crop's own error is the one raised, also for a file
    with pytest.raises(ValueError, match="outside"):
        cropper.crop(tmp_path / "big.jpg", subject=(5000, 5000, 10, 10), cut=True)


def test_exif_orientation_and_odd_modes(cropper, tmp_path):
    img = Image.new("RGB", (200, 100), (200, 10, 10))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 on display
    img.save(tmp_path / "rot.jpg", exif=exif)
    res = cropper.crop(tmp_path / "rot.jpg", subject=(10, 10, 50, 100))
    assert res.size == (100, 200)
    for mode in ("L", "RGBA", "CMYK", "I;16", "P"):
        im = Image.new("RGB", (80, 60), (10, 200, 30)).convert(mode)
        assert cropper.crop(im, subject=(5, 5, 30, 30)).size == (80, 60)
    sixteen = (np.arange(60 * 80).reshape(60, 80) * 10).astype(np.uint16)
    assert cropper.crop(sixteen, subject=(5, 5, 30, 30)).size == (80, 60)


def test_subject_mask_gives_its_bounding_box(cropper):
    mask = np.zeros((60, 80), bool)
    mask[10:30, 20:50] = True
    res = cropper.crop(np.zeros((60, 80, 3), np.uint8), subject=mask)
    assert res.subject.xywh == (20, 10, 30, 20) and res.subject_source == "mask"


def test_bad_subjects_are_clear_errors(cropper):
    img = Image.new("RGB", (80, 60))
    with pytest.raises(ValueError, match="outside"):
        cropper.crop(img, subject=(100, 100, 10, 10))
    with pytest.raises(ValueError, match="no area"):
        cropper.crop(img, subject=(10, 10, 0, 10))
    with pytest.raises(SubjectRequired):
        cropper.crop(img)
    with pytest.raises(ValueError, match="empty"):
        cropper.crop(img, subject=np.zeros((60, 80), bool))


def test_many_photos_crop_as_single_calls(cropper):
    rng = np.random.default_rng(2)
    imgs = [
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for w, h in [(100, 60), (50, 90), (70, 70)]
    ]
    subjects = [(10, 10, 30, 30), (5, 20, 20, 40), (0, 0, 70, 70)]
    many = cropper.crop(imgs, subjects, batch_size=2)
    for im, s, r in zip(imgs, subjects, many):
        assert r.box.xywh == pytest.approx(cropper.crop(im, subject=s).box.xywh, abs=1e-3)


def test_subject_mask_channel_model(tmp_path):
    torch.manual_seed(0)
    GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=64, in_channels=4)).save_pretrained(tmp_path)
    c = Cropper.from_pretrained(tmp_path, device="cpu")
    mask = np.zeros((60, 80), bool)
    mask[10:30, 20:50] = True
    photo = np.zeros((60, 80, 3), np.uint8)
    assert Box(0, 0, 80, 60).contains(c.crop(photo, subject=mask).box)
    both = c.crop(photo, subject=(15, 5, 40, 30), subject_mask=mask)
    assert both.subject.xywh == (15, 5, 40, 30)  # the annotated box stays the subject
    with pytest.raises(ValueError, match="photo is 80x60"):
        c.crop(photo, subject=(15, 5, 40, 30), subject_mask=np.ones((10, 10), bool))


def _gencrop(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "gencrop", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_cli_crop_json_and_outputs(model_dir, example_photo, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    r = _gencrop(
        "crop",
        example_photo,
        bad,
        "--model",
        model_dir,
        "--subject",
        "150,30,200,300",
        "--json",
        "--visualize",
        "-o",
        tmp_path / "out",
        "-q",
    )
    assert r.returncode == 1, r.stderr  # some photos failed
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == 2
    ok = lines[0]
    x, y, w, h = ok["crop"]
    assert ok["subject"] == [150, 30, 200, 300] and x >= 0 and y >= 0 and x + w <= 512 and y + h <= 512
    assert Image.open(ok["output"]).size == Box(x, y, w, h).rounded().xywh[2:]
    assert Image.open(ok["visualization"]).width > 512
    assert "cannot read image" in lines[1]["error"]
    assert r.stderr.count("error:") == 1 and "1 of 2 photos cropped, 1 failed" in r.stderr


def _main(capsys, *args):
    """Run the CLI in-process (fast); returns (exit code, stdout, stderr)."""
    from gencrop.cli import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_crop_errors(model_dir, example_photo, tmp_path, capsys):
    code, _, err = _main(capsys, "crop", example_photo, "--model", model_dir, "--subject", "1,2,3")
    assert code == 2 and "--subject" in err and "Traceback" not in err
    code, _, err = _main(
        capsys, "crop", example_photo, "--model", model_dir, "--subject", "900,900,10,10", "--no-write"
    )
    assert code == 1 and "outside" in err
    code, _, err = _main(capsys, "crop", example_photo, "--model", tmp_path / "nomodel", "--subject", "1,2,3,4")
    assert code == 2 and "not found" in err
    code, _, err = _main(capsys, "crop", example_photo, "--model", model_dir, "--aspect", "4:x")
    assert code == 2 and "--aspect" in err
    code, _, err = _main(capsys, "crop", example_photo, "--model", model_dir, "--subjects", tmp_path / "none.json")
    assert code == 2 and "no such file" in err
    subjects = tmp_path / "s.json"
    subjects.write_text(json.dumps({example_photo.name: [150, 30, 200, 300]}))
    code, out, err = _main(
        capsys, "crop", example_photo.parent, "--model", model_dir, "--subjects", subjects, "--json", "--no-write"
    )
    assert code == 0, err
    assert json.loads(out.splitlines()[0])["subject"] == [150, 30, 200, 300]
    subjects.write_text(json.dumps({example_photo.name: [150, 30, 200]}))
    code, _, err = _main(capsys, "crop", example_photo, "--model", model_dir, "--subjects", subjects)
    assert code == 2 and example_photo.name in err


def test_cli_crop_without_subject_or_finder_says_how_to_give_one(
    model_dir, example_photo, tmp_path, capsys, monkeypatch
):
    import gencrop.subject

    def unavailable(img, size=None, **kwargs):  # as when neither detector nor saliency model is installed
        raise gencrop.subject.SubjectNotFound("no subject finder is available")

    monkeypatch.setattr(gencrop.subject, "find_subject", unavailable)
    code, out, err = _main(capsys, "crop", example_photo, "--model", model_dir, "--json", "-o", tmp_path)
    assert code == 1 and "--subject" in err and "error" in json.loads(out)
