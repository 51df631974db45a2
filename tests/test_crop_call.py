"""The one crop call: one photo or many, one shape or several, the cropped photo on demand.

A network stub with a known answer (tests/contract_support.py) keeps these fast and exact; the
bundled model's crops are pinned in test_bundled_model_pinned.py.
"""

from __future__ import annotations

import io
import types

import numpy as np
import pytest
from PIL import Image

from contract_support import FixedNetwork, SubjectEchoNetwork
from gencrop.crop_result import CropResult
from gencrop.geometry import Box
from gencrop.inference import Cropper

PROPOSAL = [0.1, 0.25, 0.5, 0.75]  # in a 320 x 200 photo: (32, 20, 128 x 160)
SUBJECT = Box(250, 150, 50, 40)  # kept: the crop shifts to (172, 30, 128 x 160)


@pytest.fixture()
def photo_file(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (200, 320, 3), dtype=np.uint8)).save(path)
    return path


def test_one_photo_one_shape_gives_one_result(photo_file):
    result = Cropper(FixedNetwork(PROPOSAL)).crop(photo_file, SUBJECT)
    assert isinstance(result, CropResult) and result.box == Box(172, 30, 128, 160)
    # the keywords and the shapes argument ask for the same crop
    cropper = Cropper(FixedNetwork(PROPOSAL))
    assert cropper.crop(photo_file, SUBJECT, aspect="1:1").box == cropper.crop(photo_file, SUBJECT, shapes="1:1").box


def test_several_shapes_give_one_crop_per_shape_from_one_pass(photo_file):
    net = FixedNetwork(PROPOSAL)
    crops = Cropper(net).crop(photo_file, SUBJECT, shapes=["16:9", "1:1", "free"])
    assert [c.shape.name if c.shape else "free" for c in crops] == ["16x9", "1x1", "free"]
    assert len(net.calls) == 1
    assert crops[2].box == Box(172, 30, 128, 160)
    # a list of one shape is still "several": a list back
    assert len(Cropper(net).crop(photo_file, SUBJECT, shapes=["4:5"])) == 1


def test_many_photos_give_results_lazily_in_order_batched(tmp_path):
    sizes = [(320, 200), (200, 320), (300, 300), (320, 200), (250, 180)]
    photos = [Image.new("RGB", s) for s in sizes]
    subjects = [Box(10 + 5 * i, 20, 40, 30) for i in range(len(photos))]
    net = SubjectEchoNetwork(PROPOSAL)
    results = Cropper(net).crop(iter(photos), iter(subjects), batch_size=2, keep_subject=False)
    assert isinstance(results, types.GeneratorType) and net.calls == []  # nothing runs before it is asked for
    first = next(results)
    assert len(net.calls) == 1 and len(net.calls[0][0]) == 2  # one pass for the first batch of two
    rest = list(results)
    assert [len(c[0]) for c in net.calls] == [2, 2, 1]
    for result, subject, size in zip([first, *rest], subjects, sizes):
        assert result.size == size and result.raw_box.xyxy == pytest.approx(subject.xyxy, abs=1e-3)


def test_many_photos_need_as_many_subjects():
    photos = [Image.new("RGB", (100, 80))] * 3
    with pytest.raises(ValueError, match="subjects"):
        list(Cropper(FixedNetwork(PROPOSAL)).crop(photos, [Box(1, 1, 10, 10)] * 2))


def test_the_cropped_photo_is_decoded_on_demand_or_beside_the_network(photo_file):
    cropper = Cropper(FixedNetwork(PROPOSAL))
    lazy = cropper.crop(photo_file, SUBJECT, shapes=["1:1", "1200x630"])
    full = Image.open(photo_file).convert("RGB")
    assert lazy[0].full is lazy[1].full  # one decode shared by the photo's crops
    b = lazy[0].box
    assert np.array_equal(np.asarray(lazy[0].image), np.asarray(full.crop((b.x, b.y, b.x2, b.y2))))
    assert lazy[1].image.size == (1200, 630)
    beside = cropper.crop(photo_file, SUBJECT, shapes=["1:1", "1200x630"], cut=True)
    assert [r.box for r in beside] == [r.box for r in lazy]
    assert np.array_equal(np.asarray(beside[0].image), np.asarray(lazy[0].image))
    # an open file: its bytes are read once, and the crop is cut from them
    with open(photo_file, "rb") as f:
        from_file = cropper.crop(f, SUBJECT, shapes="1:1")
    assert np.array_equal(np.asarray(from_file.image), np.asarray(lazy[0].image))
    # a photo in memory
    assert np.array_equal(np.asarray(cropper.crop(full, SUBJECT, shapes="1:1").image), np.asarray(lazy[0].image))


def test_prepared_photos_go_through_the_same_call(photo_file):
    cropper = Cropper(FixedNetwork(PROPOSAL))
    prepared = cropper.prepare(photo_file, SUBJECT, cut=True)
    result = cropper.crop(prepared, shapes="1:1")
    assert result.box == cropper.crop(photo_file, SUBJECT, shapes="1:1").box
    assert result.image.size == (int(result.box.w), int(result.box.h))
    [a, b] = cropper.crop([prepared, cropper.prepare(photo_file, SUBJECT)])
    assert a.box == b.box


def test_bad_calls_say_what_is_wrong(photo_file):
    cropper = Cropper(FixedNetwork(PROPOSAL))
    with pytest.raises(ValueError, match="not both"):
        cropper.crop(photo_file, SUBJECT, shapes="1:1", aspect="4:5")
    with pytest.raises(ValueError, match="no shapes"):
        cropper.crop(photo_file, SUBJECT, shapes=[])
    with pytest.raises(TypeError, match="BytesIO"):
        cropper.crop(photo_file.read_bytes(), SUBJECT)


@pytest.mark.parametrize(
    "name, call",
    [
        ("crop_shapes", lambda c, p: c.crop_shapes(p, ["1:1", "free"], SUBJECT)),
        ("crop_full", lambda c, p: c.crop_full(p, SUBJECT, aspect="1:1")[0]),
        ("crop_shapes_full", lambda c, p: c.crop_shapes_full(p, ["1:1"], SUBJECT)[0]),
        ("crop_many", lambda c, p: c.crop_many([p, p], [SUBJECT, SUBJECT])),
        ("crop_shapes_many", lambda c, p: c.crop_shapes_many([p], ["1:1"], [SUBJECT])),
        ("prepare_full", lambda c, p: c.crop(c.prepare_full(p, SUBJECT)[0])),
    ],
)
def test_the_old_methods_still_work_and_say_they_are_deprecated(photo_file, name, call):
    cropper = Cropper(FixedNetwork(PROPOSAL))
    with pytest.warns(DeprecationWarning, match=name):
        old = call(cropper, photo_file)
    flat = old if isinstance(old, list) else [old]
    flat = [r for item in flat for r in (item if isinstance(item, list) else [item])]
    assert all(isinstance(r, CropResult) for r in flat)
    expected = {None: Box(172, 30, 128, 160), "1x1": cropper.crop(photo_file, SUBJECT, shapes="1:1").box}
    assert all(r.box == expected[r.shape.name if r.shape else None] for r in flat)


def test_the_old_full_prepare_refuses_a_prepared_photo(photo_file):
    cropper = Cropper(FixedNetwork(PROPOSAL))
    prepared = cropper.prepare(photo_file, SUBJECT)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="no full-resolution decode"):
        cropper.prepare_full(prepared)


def test_the_full_decode_of_the_old_calls_is_the_photo(photo_file):
    cropper = Cropper(FixedNetwork(PROPOSAL))
    with pytest.warns(DeprecationWarning):
        result, full = cropper.crop_full(io.BytesIO(photo_file.read_bytes()), SUBJECT)
    assert full.size == (320, 200) and np.array_equal(np.asarray(result.cut(full)), np.asarray(result.image))
