"""Canvas names ``img<ID>_X_Y_W_H.<ext>``: one parser, read the same by the data reader and the engine."""

import pytest

from gencrop.data import outpaint as data_names
from gencrop.engine import runner as engine_names
from gencrop.geometry import Box

GOOD = {
    "img123_10_20_300_200.jpg": ("123", 10, 20, 300, 200),
    "imgfoo_bar_7_-3_-40_64_48.png": ("foo_bar_7", -3, -40, 64, 48),  # id with underscores, frame off the canvas
    "img-Xy9_0_0_1_1.webp": ("-Xy9", 0, 0, 1, 1),
}
BAD = [
    "photo.jpg",
    "imgA1.jpg",
    "imgA_1_2_3.jpg",
    "imgA_1_2_x_4.jpg",
    "img_1_2_3_4.jpg",
    "imgA_1_2_0_4.jpg",
    "imgA_1_2_3_-4.jpg",
    "imgA_+1_2_3_4.jpg",
    "imgA_1_2_3_4",
    "imgA_1_\u0663_3_4.jpg",
]


@pytest.mark.parametrize("name", sorted(GOOD))
def test_both_sides_read_a_canvas_name_identically(name):
    pid, x, y, w, h = GOOD[name]
    assert data_names.parse_outpaint_name(name) == (pid, x, y, w, h)
    assert engine_names.parse_outpaint_name(name) == (pid, Box(x, y, w, h))
    assert engine_names.parse_outpaint_name(f"/some/folder/{name}") == (pid, Box(x, y, w, h))


@pytest.mark.parametrize("name", BAD)
def test_both_sides_refuse_the_same_names(name):
    with pytest.raises(ValueError, match="img<ID>_X_Y_W_H|integers|positive"):
        data_names.parse_outpaint_name(name)
    assert engine_names.parse_outpaint_name(name) is None


def test_the_writer_and_the_parser_agree():
    for pid in ["1", "a_b", "-x"]:
        for box in [Box(10, 20, 300, 200), Box(-5, -7, 30, 20), Box(10.4, 19.6, 299.5, 200.2)]:
            name = engine_names.outpaint_name(pid, box, ".png")
            want = Box(*(round(v) for v in box.xywh))
            assert data_names.parse_outpaint_name(name) == (pid, *want.xywh)
            assert engine_names.parse_outpaint_name(name) == (pid, want)
