"""Data engine building blocks: sharding, names, canvas placement, captions, records, inspect."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gencrop.engine.caption import labels_caption, to_ascii
from gencrop.engine.outpaint import plan_variations, sample_placement, variation_rng
from gencrop.engine.quality import precision_recall, split_held_out
from gencrop.engine.runner import outpaint_name, parse_outpaint_name, photo_id
from gencrop.engine.sharding import Shard, resolve_shard, shard_from_env
from gencrop.engine.view import inspect_file
from gencrop.geometry import Box
from gencrop.io import save_npz, write_json


# -- sharding -------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_cover_every_key_once(n):
    keys = [f"k{i}" for i in range(23)]
    shuffled = list(reversed(keys))  # every process may list files in another order
    parts = [Shard(k, n).select(shuffled if k % 2 else keys) for k in range(n)]
    flat = [x for p in parts for x in p]
    assert sorted(flat) == sorted(keys) and len(flat) == len(set(flat))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_shard_from_launcher_environment():
    assert shard_from_env({}) == Shard(0, 1)
    assert shard_from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == Shard(1, 2)
    assert shard_from_env({"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "4"}) == Shard(2, 4)
    assert shard_from_env({"PMI_RANK": "0", "PMI_SIZE": "3"}) == Shard(0, 3)
    # --part wins over the environment
    assert resolve_shard([1, 3], {"RANK": "0", "WORLD_SIZE": "2"}) == Shard(1, 3)
    with pytest.raises(ValueError):
        resolve_shard([2, 2])
    assert Shard(1, 2).tag == "part1-of-2"


# -- names ----------------------------------------------------------------------
def test_outpaint_names_round_trip():
    for pid in ["123", "foo_bar_baz", "-Xy9", "a_1_2"]:
        name = outpaint_name(pid, Box(10, 20, 300, 200))
        assert name == f"img{pid}_10_20_300_200.jpg"
        got_id, box = parse_outpaint_name(name)
        assert got_id == pid and box == Box(10, 20, 300, 200)
    assert parse_outpaint_name("img-Xy9_10_20_300_200.png")[0] == "-Xy9"
    assert parse_outpaint_name("imgA1.jpg") is None
    assert photo_id("img-Xy9.jpg") == "-Xy9" and photo_id("photo.jpg") is None


def test_parse_outpaint_names_golden(golden_dir):
    data = json.loads((golden_dir / "outpaint_split.json").read_text())
    expected = data["parsed_file_names"]
    names = expected if isinstance(expected, dict) else dict(zip(data["inputs"]["img_files"], expected))
    assert names
    for name, (pid, x, y, w, h) in names.items():
        got_id, box = parse_outpaint_name(name)
        assert got_id == pid and box.xywh == (x, y, w, h)


# -- placement ------------------------------------------------------------------
def test_placement_covers_the_requested_area_inside_the_canvas():
    fracs = []
    for i in range(300):
        rng = variation_rng(0, "p", i)
        box = sample_placement(600, 400, rng, (0.1, 0.5), 512)
        assert 0 <= box.x and 0 <= box.y and box.x2 <= 512 and box.y2 <= 512
        assert abs(box.w / box.h - 1.5) < 0.02
        fracs.append(box.area / 512**2)
    fracs = np.array(fracs)
    # 3:2 photos reach a long side of 0.9*512 at ~0.54 of the area, so every draw is in range
    assert fracs.min() > 0.095 and fracs.max() < 0.505 and fracs.mean() == pytest.approx(0.3, abs=0.03)


def test_placement_long_side_rule_for_panoramas():
    for i in range(200):
        box = sample_placement(800, 100, variation_rng(1, "wide", i), (0.1, 0.5), 512)
        # at 10% area the long side would be 0.89*512 at most -> any larger draw falls back to [0.5, 0.9]*512
        assert 0.5 * 512 - 1 <= box.w <= 0.9 * 512 + 1


def test_placement_is_deterministic_per_photo_and_index():
    a = sample_placement(640, 480, variation_rng(3, "x", 2))
    b = sample_placement(640, 480, variation_rng(3, "x", 2))
    c = sample_placement(640, 480, variation_rng(3, "y", 2))
    assert a == b and a != c


def test_resumed_plan_equals_uninterrupted_plan():
    full = plan_variations("p", (640, 480), set(), 5, 0, (0.1, 0.5), 512)
    assert len(full) == 5 and len({v.name for v in full}) == 5
    done = {full[0].name, full[2].name}  # a killed run wrote two of them
    rest = plan_variations("p", (640, 480), done, 5, 0, (0.1, 0.5), 512)
    assert {v.name for v in rest} | done == {v.name for v in full}
    assert plan_variations("p", (640, 480), {v.name for v in full}, 5, 0, (0.1, 0.5), 512) == []


# -- captions -------------------------------------------------------------------
def test_ascii_captions():
    assert to_ascii("  a café\nin Zürich — ☃ ") == "a cafe in Zurich"
    assert to_ascii("日本") == ""


def test_labels_caption():
    assert labels_caption([]) == "a photo"
    assert labels_caption(["person"]) == "a photo of a person"
    assert labels_caption(["dog", "person", "person", "elephant"]) == "a photo of a dog, two people and an elephant"


# -- quality metrics ------------------------------------------------------------
def test_precision_recall_and_stratified_split(tmp_path):
    m = precision_recall([0.9, 0.8, 0.2, 0.6, 0.1], [1, 0, 1, 1, 0])
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    items = [(tmp_path / f"g{i}.jpg", 0) for i in range(10)] + [(tmp_path / f"b{i}.jpg", 1) for i in range(3)]
    train, held = split_held_out(items, 0.2, 0)
    assert sorted(train + held) == sorted(items) and not set(train) & set(held)
    assert sum(y for _, y in held) == 1 and sum(1 for _, y in held if y == 0) == 2


# -- inspect --------------------------------------------------------------------
def test_inspect_describes_json_gz_and_npz(tmp_path):
    write_json(
        tmp_path / "detect.json.gz",
        {"imgA_1_2_3_4": [{"xywh": [1, 2, 3, 4], "score": 0.9, "class": "person", "mask_id": 0}]},
    )
    save_npz(tmp_path / "mask.npz", {"0": np.zeros((5, 2), np.float32)})
    text = inspect_file(tmp_path / "detect.json.gz")
    assert "dict with 1 keys" in text and "'mask_id': int 0" in text and "[1, 2, 3, 4]" in text
    text = inspect_file(tmp_path / "mask.npz")
    assert "1 arrays" in text and "'0': float32 (5, 2)" in text
    with pytest.raises(ValueError):
        inspect_file(_touch(tmp_path / "x.txt"))


def _touch(path):
    path.write_text("x")
    return path
