"""`gencrop dataset check` and `gencrop dataset link` on a dataset of one's own photos."""

import json

from gencrop.cli import main
from gencrop.data.own import check_dataset, link_photos

from eval_layouts import synth_photo


def _write(d, split, entries):
    (d / f"{split}.json").write_text(json.dumps(entries))


def test_check_accepts_a_good_dataset(tmp_path, capsys):
    d, imgs = tmp_path / "ds", tmp_path / "imgs"
    d.mkdir()
    for i, split in enumerate(("train", "val", "test")):
        _write(
            d,
            split,
            [{"id": f"{split}{k}", "subject_xywh": [0.1, 0.2, 0.3, 0.4]} for k in range(2)]
            + [{"id": f"-{split}_none", "subject_xywh": None}],
        )
        for k in range(2):
            synth_photo(imgs / f"img{split}{k}.jpg", (40, 30))
        synth_photo(imgs / f"img-{split}_none.jpg", (40, 30))
    assert main(["dataset", "check", str(d), "--images", str(imgs)]) == 0
    assert "train 3, val 3, test 3; OK, 0 warnings" in capsys.readouterr().out


def test_check_reports_precise_problems(tmp_path, capsys):
    d, imgs = tmp_path / "ds", tmp_path / "imgs"
    d.mkdir()
    imgs.mkdir()
    synth_photo(imgs / "imga.jpg", (40, 30))
    _write(
        d,
        "train",
        [
            {"id": "a", "subject_xywh": [0.1, 0.1, 0.5, 0.5]},
            {"id": "a", "subject_xywh": [0.1, 0.1, 0.5, 0.5]},  # duplicate
            {"id": 7, "subject_xywh": None},  # not a string
            {"id": "px", "subject_xywh": [120, 40, 300, 200]},  # pixels
            {"id": "neg", "subject_xywh": [0.1, 0.1, 0.0, 0.5]},  # empty
            {"subject_xywh": None},  # no id
            {"id": "nos"},  # no subject field
        ],
    )
    _write(d, "test", [{"id": "a", "subject_xywh": None}])  # leaks into test
    (d / "val.json").write_text("{not json")
    report = check_dataset(d, imgs)
    text = "\n".join(map(str, report.problems))
    assert "train.json[1] (id 'a'): duplicate id (also entry 0)" in text
    assert "train.json[2] (id 7): id must be a string" in text
    assert "train.json[3] (id 'px'): subject_xywh must be in 0-1" in text and "looks like pixels" in text
    assert "train.json[4] (id 'neg'): subject_xywh width and height must be positive" in text
    assert 'train.json[5]: no "id"' in text
    assert "train.json[6] (id 'nos'): no \"subject_xywh\"" in text
    assert "test.json[0] (id 'a'): id also in train.json" in text
    assert "val.json: not valid JSON" in text
    assert f"photo {imgs / 'imgpx.jpg'} missing" in text
    assert main(["dataset", "check", str(d)]) == 1
    out = capsys.readouterr().out
    assert "errors" in out and "photos not checked" in out


def test_link_makes_img_id_links_and_resumes(tmp_path, capsys):
    src, dst = tmp_path / "photos", tmp_path / "linked"
    synth_photo(src / "beach day.jpg", (40, 30))
    synth_photo(src / "-dash.JPEG", (40, 30))
    synth_photo(src / "b.jpg", (40, 30))
    (src / "b.png").write_bytes((src / "b.jpg").read_bytes())  # same id as b.jpg
    synth_photo(src / "c.png", (40, 30))
    r = link_photos(src, dst)
    assert r.linked == 4 and len(r.conflicts) == 1 and r.not_jpeg == ["c.png"]
    assert sorted(p.name for p in dst.iterdir()) == ["img-dash.jpg", "imgb.jpg", "imgbeach day.jpg", "imgc.png"]
    assert (dst / "img-dash.jpg").resolve() == (src / "-dash.JPEG").resolve()
    assert main(["dataset", "link", str(src), str(dst)]) == 1  # the conflict is still reported
    assert "0 links made, 4 already there, 1 conflicts" in capsys.readouterr().out
    assert main(["dataset", "link", str(tmp_path / "nope"), str(dst)]) == 2
