"""What a user asks of Cropper and `gencrop crop`: shapes, sizes, the subject kept, one preparation."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402

from gencrop.geometry import Box  # noqa: E402
from gencrop.inference import Cropper  # noqa: E402
from gencrop.modeling import GenCrop, GenCropConfig  # noqa: E402
from gencrop.shapes import round_box  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("model")
    GenCrop(
        GenCropConfig(
            arch="mobilenetv2_100",
            image_size=64,
            in_channels=4,
            transpose_anchors=False,
            subject_weighting="restricted",
        )
    ).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def cropper(model_dir):
    return Cropper.from_pretrained(model_dir, device="cpu")


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (200, 320, 3), dtype=np.uint8))


def _contains(crop: Box, s: Box) -> bool:
    return crop.x <= s.x and crop.y <= s.y and crop.x2 >= s.x2 and crop.y2 >= s.y2


def test_shapes_are_exact_inside_and_keep_the_subject(cropper, photo):
    subject = Box(200, 60, 70, 90)
    results = cropper.crop(photo, subject, shapes=["1:1", "16:9", "4:5", "1200x630", "free"])
    assert [r.shape.name if r.shape else "free" for r in results] == ["1x1", "16x9", "4x5", "1200x630", "free"]
    for r, ratio in zip(results, [(1, 1), (16, 9), (4, 5), (40, 21), None]):
        b = r.box
        assert all(float(v).is_integer() for v in b.xywh)
        assert 0 <= b.x and 0 <= b.y and b.x2 <= 320 and b.y2 <= 200
        if ratio:
            assert b.w * ratio[1] == b.h * ratio[0]
        assert _contains(b, subject) and r.subject_kept
    assert results[3].cut(photo).size == (1200, 630)
    assert results[0].cut(photo).size == (int(results[0].box.w),) * 2
    # one network pass for all shapes: the same proposal behind each
    assert len({tuple(r.raw_box.xywh) for r in results}) == 1
    # one shape asked alone gives the same crop as in the list
    assert cropper.crop(photo, subject, aspect="16:9").box == results[1].box
    assert cropper.crop(photo, subject, size=(1200, 630)).box == results[3].box


def test_allow_subject_cut_returns_the_network_crop(cropper, photo):
    subject = Box(0, 0, 40, 40)  # in a corner, where a random network's crop will not reach
    free = cropper.crop(photo, subject, keep_subject=False)
    proposal = free.raw_box.clamp(320, 200)
    proposal = subject if proposal.is_empty() else proposal  # a degenerate (random) network's crop
    assert free.box == round_box(proposal, 320, 200) and not free.subject_kept
    kept = cropper.crop(photo, subject)
    assert _contains(kept.box, subject)
    if not _contains(free.box, subject):
        assert kept.box != free.box


def _jpeg(tmp_path, name, size, seed):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(small).resize(size, Image.BICUBIC).save(tmp_path / name, quality=95)
    return tmp_path / name, np.asarray(Image.open(tmp_path / name).convert("RGB"))  # what the file holds


def test_file_and_memory_give_the_same_network_input(cropper, tmp_path):
    """A photo passed as a file, a PIL image or an array gets the same network input and crop."""
    # a 1/2 reduction (photos up to 4x the input): exactly the same input
    path, pixels = _jpeg(tmp_path, "mid.jpg", (200, 150), 4)
    subject = (50, 30, 60, 80)
    inputs = [cropper.prepare(src, subject).array for src in (path, Image.fromarray(pixels), pixels)]
    assert np.array_equal(inputs[0], inputs[1]) and np.array_equal(inputs[1], inputs[2])
    # a large JPEG decoded at 1/8 size (DCT scaling) vs a box filter in memory: nearly the same input
    path, pixels = _jpeg(tmp_path, "big.jpg", (1600, 1200), 5)
    subject = (500, 300, 400, 500)
    a, b, c = (cropper.prepare(src, subject).array for src in (path, Image.fromarray(pixels), pixels))
    assert np.abs(a - b).mean() < 0.02 and np.array_equal(b, c)
    # an open file is the file: the same reduced decode
    with open(path, "rb") as f:
        assert np.array_equal(cropper.prepare(f, subject).array, a)


def test_prepared_photos_crop_like_the_photos(cropper, model_dir, tmp_path):
    """prepare() then crop() (one shape, a list of shapes, many photos) gives what the photo itself gives; a prepared photo
    carries its subject, and only the model it was prepared for takes it."""
    path, _ = _jpeg(tmp_path, "p.jpg", (1600, 1200), 6)
    other, _ = _jpeg(tmp_path, "q.jpg", (300, 420), 7)
    subject, subject_q = (500, 300, 400, 500), (40, 200, 100, 120)
    prepared = cropper.prepare(path, subject)
    assert prepared.size == (1600, 1200) and prepared.subject.xywh == subject and prepared.source == "given"
    assert cropper.crop(prepared, aspect="1:1").box == cropper.crop(path, subject, aspect="1:1").box
    shapes = ["free", "16:9", "300x400"]
    assert [r.box for r in cropper.crop(prepared, shapes=shapes)] == [
        r.box for r in cropper.crop(path, subject, shapes=shapes)
    ]
    mixed = cropper.crop([prepared, other], [None, subject_q], aspect="4:5")
    alone = cropper.crop([path, other], [subject, subject_q], aspect="4:5")
    assert [r.box for r in mixed] == [r.box for r in alone]
    with pytest.raises(ValueError, match="carries its subject"):
        cropper.crop(prepared, subject)
    three_channel = Cropper(GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=64, in_channels=3)))
    with pytest.raises(ValueError, match="prepared for another model"):
        three_channel.crop(prepared)


def test_prepare_with_cut_decodes_the_photo_once_or_beside(cropper, tmp_path):
    """The full decode is the photo at its upright size; the network input is the one prepare() makes,
    for a path and for an open file alike (a large JPEG is decoded twice: reduced and in full)."""
    path, pixels = _jpeg(tmp_path, "big.jpg", (1600, 1200), 8)
    subject = (500, 300, 400, 500)
    want = cropper.prepare(path, subject).array
    with open(path, "rb") as opened:
        for source in (path, opened):
            prepared = cropper.prepare(source, subject, cut=True)
            assert np.array_equal(prepared.array, want)
            assert np.array_equal(np.asarray(prepared.photo), pixels)
    path, pixels = _jpeg(tmp_path, "mid.jpg", (200, 150), 9)
    prepared = cropper.prepare(Image.fromarray(pixels), (10, 10, 50, 50), cut=True)
    assert np.array_equal(np.asarray(prepared.photo), pixels)
    assert np.array_equal(prepared.array, cropper.prepare(path, (10, 10, 50, 50)).array)


def test_cli_writes_every_shape_exactly(model_dir, example_photo, tmp_path, capsys):
    from gencrop.cli import main

    rc = main(
        [
            "crop",
            str(example_photo),
            "--model",
            str(model_dir),
            "--subject",
            "420,0,90,330",
            "--aspect",
            "1:1",
            "--aspect",
            "16:9",
            "--size",
            "1200x630",
            "-o",
            str(tmp_path),
            "--json",
            "-q",
        ]
    )
    assert rc == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["shape"] for r in records] == ["1x1", "16x9", "1200x630"]
    sizes = {r["shape"]: Image.open(r["output"]).size for r in records}
    assert sizes["1200x630"] == (1200, 630)
    w, h = sizes["16x9"]
    assert w * 9 == h * 16
    w, h = sizes["1x1"]
    assert w == h
    for r in records:  # the printed crop is the cut
        if r["shape"] != "1200x630":
            assert tuple(r["crop"][2:]) == sizes[r["shape"]]
    assert (tmp_path / "astronaut_1x1.jpg").is_file() and (tmp_path / "astronaut_16x9.jpg").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--aspect", "wide"], "--aspect"),
        (["--size", "1200"], "--size"),
        (["--aspect", "1:1", "--aspect", "1:1"], "twice"),
        (["--area", "2"], "--area"),
    ],
)
def test_cli_bad_shape_requests_are_usage_errors(model_dir, example_photo, tmp_path, capsys, args, message):
    from gencrop.cli import main

    rc = main(["crop", str(example_photo), "--model", str(model_dir), "-o", str(tmp_path), *args])
    assert rc == 2 and message in capsys.readouterr().err
