"""Contracts of Cropper and photo reading, with a network whose answer is known (no shared data).

A random network predicts degenerate crops, and the Cropper then falls back to the subject's box:
"the crop keeps the subject" holds whatever the code does. The stub network here always proposes
the same crop, away from the subject, so every rule after the network has work to do and its
result can be worked out by hand.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from contract_support import FixedNetwork, SubjectEchoNetwork
from gencrop.geometry import Box
from gencrop.inference import Cropper
from gencrop.io import image_size, load_image, reduction_factor


def _photo(width, height):
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


# A 320 x 200 photo in a 64 px input: scale 0.2, resized 64 x 40, offset (0, 12).
# The proposal [0.1, 0.25, 0.5, 0.75] is input (6.4, 16, 32, 48) -> photo (32, 20, 160, 180).
# A 200 x 320 photo: resized 40 x 64, offset (12, 0); the same proposal is photo (-28, 80, 100, 240).
PROPOSAL = [0.1, 0.25, 0.5, 0.75]
RAW = {(320, 200): Box.from_xyxy(32, 20, 160, 180), (200, 320): Box.from_xyxy(-28, 80, 100, 240)}


@pytest.mark.parametrize("size", [(320, 200), (200, 320)])
def test_the_proposal_maps_back_to_photo_pixels(size):
    cropper = Cropper(FixedNetwork(PROPOSAL))
    result = cropper.crop(_photo(*size), (5, 5, 10, 10), keep_subject=False)
    assert result.raw_box.xyxy == pytest.approx(RAW[size].xyxy)
    assert result.box == RAW[size].clamp(*size)  # whole pixels already: clamped only


@pytest.mark.parametrize(
    "size, rows, cols, expected",
    [
        # proposal (32, 20, 128 x 160); subject x 250..300, y 150..190. Same size, least move:
        # x from the subject's right edge (300 - 128 = 172), y from its bottom (190 - 160 = 30)
        ((320, 200), (150, 190), (250, 300), Box(172, 30, 128, 160)),
        # portrait: proposal clamped to (0, 80, 100 x 160); subject x 150..190, y 10..60:
        # x = 190 - 100 = 90, y from the subject's top (10)
        ((200, 320), (10, 60), (150, 190), Box(90, 10, 100, 160)),
    ],
)
def test_a_subject_given_as_a_mask_is_kept_inside_the_crop(size, rows, cols, expected):
    width, height = size
    mask = np.zeros((height, width), bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    cropper = Cropper(FixedNetwork(PROPOSAL))
    result = cropper.crop(_photo(width, height), mask)
    assert result.subject_source == "mask" and result.subject_kept
    assert result.subject == Box.from_xyxy(cols[0], rows[0], cols[1], rows[1])
    assert result.box == expected
    # the same subject as a box is kept the same way
    assert cropper.crop(_photo(width, height), result.subject).box == expected


def test_a_mask_channel_model_gets_the_masks_pixels_not_its_box():
    mask = np.zeros((200, 320), bool)
    mask[150:190, 250:300] = True
    mask[150:170, 250:270] = False  # an L shape: its box holds pixels that are not subject
    net = FixedNetwork(PROPOSAL, in_channels=4)
    Cropper(net).crop(_photo(320, 200), mask)
    channel = net.calls[-1][0][0, 3]
    # photo (250..270, 150..170) -> input (50..54, 42..46): outside the mask, inside its box
    assert channel[43:45, 51:53].max() == 0 and channel[48:50, 56:58].min() == 1


@pytest.mark.parametrize(
    "size, subject, expected",
    [
        # proposal (32, 20)..(160, 180), centre (96, 100); subject centre (286, 170): half way is a move
        # of (95, 35) to (127, 55)..(255, 215), cut at the bottom border: (127, 55, 128 x 145). The
        # subject (271..301 x) sticks out right: shifted to x = 301 - 128 = 173; y stays 55
        ((320, 200), Box(271, 150, 30, 40), Box(173, 55, 128, 145)),
        # portrait: clamped proposal (0, 80, 100 x 160), centre (50, 160); subject centre (150, 260):
        # a move of (50, 50) to (50, 130, 100 x 160), which holds the subject's rows (250..270);
        # its columns (130..170) stick out right: x = 170 - 100 = 70
        ((200, 320), Box(130, 250, 40, 20), Box(70, 130, 100, 160)),
    ],
)
def test_the_models_subject_pull_draws_the_crop_toward_the_subject(size, subject, expected):
    cropper = Cropper(FixedNetwork(PROPOSAL, subject_pull=0.5))
    assert cropper.crop(_photo(*size), subject).box == expected


def test_genCrop_c_models_get_the_requested_shape():
    net = FixedNetwork(PROPOSAL, variant="gencrop-c")
    Cropper(net).crop(_photo(320, 200), (250, 150, 50, 40), aspect="16:9", area=0.25)
    shapes = net.calls[-1][2]
    assert shapes is not None
    assert shapes[0] == pytest.approx([0.25, np.log(16 / 9), 1.0, 1.0])
    # a free crop beside a shaped one: one row each, the free one "no preference"
    Cropper(net).crop(_photo(320, 200), (250, 150, 50, 40), shapes=["free", "4:5"])
    shapes = net.calls[-1][2]
    assert shapes is not None
    np.testing.assert_allclose(shapes, [[0, 0, 0, 0], [0, np.log(4 / 5), 0, 1]], atol=1e-6)


def test_several_photos_and_shapes_each_get_their_own_photos_crop():
    """Two photos x two shapes from one network pass: each result is its own photo's proposal."""
    photos = [_photo(320, 200), _photo(200, 320)]
    subjects = [Box(250, 150, 50, 40), Box(20, 200, 60, 100)]
    results = list(
        Cropper(SubjectEchoNetwork(PROPOSAL)).crop(photos, subjects, shapes=["free", "1:1"], keep_subject=False)
    )
    assert len(results) == 2 and all(len(r) == 2 for r in results)
    for per_photo, subject in zip(results, subjects):
        for r in per_photo:
            assert r.raw_box.xyxy == pytest.approx(subject.xyxy, abs=1e-3)  # the network proposed the subject
    assert results[0][0].box == Box(250, 150, 50, 40) and results[1][0].box == Box(20, 200, 60, 100)


# -- EXIF orientations -------------------------------------------------------------------------
# The stored pixels S and what a viewer shows for each orientation (the EXIF definitions, written
# as array operations): D[i, j] in terms of S.
VIEWED = {
    1: lambda s: s,
    2: lambda s: s[:, ::-1],  # mirrored left-right
    3: lambda s: s[::-1, ::-1],  # turned 180 degrees
    4: lambda s: s[::-1, :],  # mirrored top-bottom
    5: lambda s: s.transpose(1, 0, 2),  # transpose: row 0 shown as the left column, top down
    6: lambda s: np.rot90(s, -1),  # turned 90 degrees clockwise: row 0 shown as the right column
    7: lambda s: s[::-1, ::-1].transpose(1, 0, 2),  # transverse: row 0 as the right column, bottom up
    8: lambda s: np.rot90(s, 1),  # turned 90 degrees counter-clockwise: row 0 as the left column
}


def _stored() -> np.ndarray:
    """A 3 x 2 (w x h) image with six different colours: every flip and turn shows."""
    return np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]], [[255, 255, 0], [0, 255, 255], [255, 0, 255]]], np.uint8)


def _with_orientation(stored: np.ndarray, orientation: int, fmt: str, scale: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    img = Image.fromarray(stored).resize((stored.shape[1] * scale, stored.shape[0] * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format=fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientations_give_the_upright_size_and_pixels(orientation, tmp_path):
    stored = _stored()
    expected = VIEWED[orientation](stored)
    path = tmp_path / f"o{orientation}.png"
    path.write_bytes(_with_orientation(stored, orientation, "PNG"))
    img, size = load_image(path)
    assert size == (expected.shape[1], expected.shape[0]) == img.size
    assert np.array_equal(np.asarray(img), expected)
    assert image_size(path) == size  # from the header alone, as the evaluation reads sizes


@pytest.mark.parametrize(
    "size, min_side, factor",
    [
        ((1024, 512), 256, 2),  # short side 512 = 2 x 256: halved exactly to 256
        ((1023, 511), 256, 1),  # 511 / 2 < 256: not reduced
        ((600, 1000), 256, 2),  # 600 / 2 = 300 >= 256; / 4 = 150 < 256
        ((4000, 3000), 256, 8),  # at most 1/8 (3000 / 8 = 375)
        ((2048, 1024), 256, 4),  # 1024 / 4 = 256
    ],
)
def test_the_decoders_reduction_keeps_the_short_side(size, min_side, factor):
    assert reduction_factor(size, min_side) == factor


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientations_of_a_large_jpeg_read_reduced(orientation):
    """A JPEG decoded at reduced size for the network: the upright full size, the upright pixels."""
    stored = _stored()
    expected = VIEWED[orientation](stored)
    data = _with_orientation(stored, orientation, "JPEG", scale=256)  # 768 x 512 stored
    img, size = load_image(io.BytesIO(data), min_side=64)
    assert size == (expected.shape[1] * 256, expected.shape[0] * 256)
    assert img.size == (size[0] // 8, size[1] // 8)  # 1/8 keeps the short side >= 64
    # the centre of each 32 px block is its colour (JPEG: within a few levels)
    centres = np.asarray(img)[16::32, 16::32].astype(int)
    assert np.abs(centres - expected.astype(int)).max() <= 12


def test_a_jpeg_halved_for_the_network_is_the_input_its_decoded_photo_gives(tmp_path):
    """Files and photos in memory make the same network input: a 1/2 reduction is never the decoder's
    (DCT scaling differs from the box filter a photo in memory gets, and the network notices)."""
    rng = np.random.default_rng(5)
    path = tmp_path / "half.jpg"
    Image.fromarray(rng.integers(0, 255, (540, 700, 3), dtype=np.uint8)).save(path, quality=90)
    from_file, size = load_image(path, min_side=256)  # 540 / 2 = 270 >= 256: halved
    from_memory, _ = load_image(load_image(path)[0], min_side=256)
    assert size == (700, 540) and from_file.size == from_memory.size == (350, 270)
    assert np.array_equal(np.asarray(from_file), np.asarray(from_memory))
