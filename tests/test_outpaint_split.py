"""The outpainted training set reader: names, subject matching, heuristic filter, folder reading."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from gencrop.data.outpaint import group_variations, load_outpaint_split, parse_outpaint_name, read_outpaint_set
from gencrop.io import save_npz, write_json


@pytest.fixture(scope="module")
def golden(golden_dir):
    return json.loads((golden_dir / "outpaint_split.json").read_text())


def test_golden_parse_outpaint_names(golden):
    for name, expected in golden["parsed_file_names"].items():
        assert list(parse_outpaint_name(name)) == expected


@pytest.mark.golden
@pytest.mark.parametrize("heuristics", [True, False])
def test_golden_load_outpaint_split(golden, heuristics):
    inp = golden["inputs"]
    got = [
        v.to_record()
        for v in load_outpaint_split(
            inp["split_data"], inp["img_files"], inp["det_dict"], filter_with_heuristics=heuristics
        )
    ]
    expected = golden["outputs"][f"filter_with_heuristics_{str(heuristics).lower()}"]
    assert [r["img_file"] for r in got] == [r["img_file"] for r in expected]
    for g, e in zip(got, expected):
        assert g["id"] == e["id"] and g["crop_xywh"] == e["crop_xywh"]
        assert (g["subject"] is None) == (e["subject"] is None)
        if e["subject"] is not None:
            assert g["subject"]["payload_mask_id"] == e["subject"]["payload_mask_id"]
            np.testing.assert_allclose(g["subject"]["xywh"], e["subject"]["xywh"], rtol=0, atol=1e-9)
            np.testing.assert_allclose(g["subject_orig"]["xywh"], e["subject_orig"]["xywh"], rtol=0, atol=1e-9)
        assert (g["height"], g["width"]) == (e["height"], e["width"])


@pytest.mark.golden
def test_golden_outpaint_split_without_detections(golden):
    case = golden["det_dict_none_case"]
    got = [
        v.to_record()
        for v in load_outpaint_split(
            case["split_data"], case["img_files"], case["det_dict"], case["filter_with_heuristics"]
        )
    ]
    assert got == case["output"]


def test_bad_names_raise():
    for name in ["photo.jpg", "imgA_1_2_3.jpg", "imgA_1_2_x_4.jpg", "img_1_2_3_4.jpg"]:
        with pytest.raises(ValueError):
            parse_outpaint_name(name)


def test_group_variations_keeps_order():
    split = [{"id": "b", "subject_xywh": None}, {"id": "a", "subject_xywh": None}]
    files = ["imga_0_0_5_5.jpg", "imgb_0_0_5_5.jpg", "imga_1_1_5_5.jpg"]
    groups = group_variations(load_outpaint_split(split, files, None))
    assert list(groups) == ["a", "b"]
    assert [v.img_file for v in groups["a"]] == ["imga_0_0_5_5.jpg", "imga_1_1_5_5.jpg"]


def test_read_outpaint_set_folder(tmp_path):
    root = tmp_path / "ds"
    images = root / "outpaint" / "images"
    images.mkdir(parents=True)
    write_json(
        root / "train.json",
        [{"id": "p1", "subject_xywh": [0.25, 0.25, 0.5, 0.5]}, {"id": "p2", "subject_xywh": [0.25, 0.25, 0.5, 0.5]}],
    )
    names = ["imgp1_10_10_40_40.jpg", "imgp1_0_0_40_40.jpg", "imgp2_5_5_40_40.png", "imgzz_0_0_4_4.jpg"]
    for n in names:
        Image.new("RGB", (64, 48)).save(images / n)
    write_json(root / "outpaint" / "bad.json", ["imgp1_0_0_40_40.jpg"])
    write_json(
        root / "outpaint" / "detect.json.gz",
        {
            "imgp1_10_10_40_40": [{"xywh": [20, 20, 20, 20], "score": 0.9, "class": "person", "mask_id": 3}],
            "imgp2_5_5_40_40": [{"xywh": [0, 0, 2, 2], "score": 0.9, "class": "person", "mask_id": 4}],
        },
    )
    save_npz(
        root / "outpaint" / "mask.npz",
        {"3": np.array([[20, 20], [40, 20], [40, 40]], np.float32), "4": np.zeros((3, 2), np.float32)},
    )
    s = read_outpaint_set(root / "outpaint", "train")
    assert list(s.groups) == ["p1"]
    v = s.groups["p1"][0]
    assert (v.width, v.height) == (64, 48) and v.subject_mask_id == 3
    assert set(s.polygons) == {"3"}
    assert s.stats == {
        "files": 4,
        "not_in_split": 1,
        "bad": 1,
        "unreadable": 0,
        "no_subject_match": 1,
        "heuristic": 0,
        "kept": 1,
    }
    assert "1 photos" in s.summary()
