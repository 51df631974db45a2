"""`gencrop eval` end to end with the baselines: reports, reproducibility from the CSV, --compare."""

import csv
import json

import pytest
from PIL import Image

from eval_layouts import fcdb_root, gaicd_root, sacd_root, unsplash_layout
from gencrop.cli import main
from gencrop.evaluation.report import FRAC_KEY, summary_from_csv
from gencrop.geometry import Box, boundary_displacement, iou


def _eval(capsys, *argv):
    code = main(["eval", "-q", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _check_report(report, n_photos):
    summary = json.loads((report / "summary.json").read_text())
    again = summary_from_csv(report)
    assert summary["num_images"] == again["num_images"] == n_photos
    for key in ("mean_iou", "mean_bde", FRAC_KEY):
        assert summary[key] == again[key]  # exactly: the CSV is the record
    assert summary["num_failed"] == again["num_failed"]
    assert summary["baselines"] == again["baselines"]
    with open(report / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:  # each row's score follows from its boxes
        pred = Box(*(float(r[f"pred_{k}"]) for k in "xywh"))
        gt = Box(*(float(r[f"gt_{k}"]) for k in "xywh"))
        W, H = float(r["width"]), float(r["height"])
        assert float(r["iou"]) == iou(pred, gt)
        assert float(r["disp"]) == boundary_displacement(pred, gt, W, H)
        assert float(r["bde"]) == float(r["disp"]) / 4
        assert (report / r["thumb"]).is_file()
    page = (report / "index.html").read_text()
    assert page.count('class="card"') == n_photos and "sortBy('iou'" in page
    return summary, rows


def test_fcdb_end_to_end_with_baselines(shared_data, tmp_path, capsys):
    names = fcdb_root(shared_data, tmp_path / "root", n_photos=5)
    report = tmp_path / "rep"
    code, out, err = _eval(
        capsys,
        "--method",
        "center:0.9",
        "--benchmark",
        "fcdb",
        "--all-images",
        "--data-root",
        str(tmp_path / "root"),
        "-o",
        str(report),
        "--baselines",
    )
    assert code == 0, err
    summary, rows = _check_report(report, 5)
    assert [r["name"] for r in rows] == names
    assert summary["method"] == "center:0.9" and set(summary["baselines"]) == {"identity", "center:0.8", "subject"}
    assert summary["num_missing"] > 0 and "missing" in err
    assert f"Mean IoU: {summary['mean_iou']:.4f}" in out and f"BDE: {summary['mean_bde']:.4f}" in out
    with Image.open(report / rows[0]["thumb"]) as im:
        assert max(im.size) <= 360


def test_gaicd_samples_end_to_end(shared_data, tmp_path, capsys):
    gaicd_root(shared_data, tmp_path / "root")
    report = tmp_path / "rep"
    code, out, err = _eval(
        capsys, "--method", "subject", "--benchmark", "gaicd", "--data-root", str(tmp_path / "root"), "-o", str(report)
    )
    assert code == 0, err
    summary, rows = _check_report(report, 2)
    assert "gencrop segment" in err  # says how to make the masks it lacks
    assert all(int(r["num_gts"]) > 50 for r in rows)  # every GAICD crop is a ground truth
    assert summary["info"]["subject_masks"].startswith("boxes")


def test_sacd_and_unsplash_end_to_end(shared_data, tmp_path, capsys):
    sacd_root(tmp_path)
    assert main(["sacd-links", str(tmp_path / "SACD")]) == 0
    code, _, err = _eval(
        capsys,
        "--method",
        "subject",
        "--benchmark",
        "sacd",
        "--data-root",
        str(tmp_path),
        "-o",
        str(tmp_path / "rep_sacd"),
    )
    assert code == 0, err
    _check_report(tmp_path / "rep_sacd", 3)
    ds, imgs, _ = unsplash_layout(shared_data, tmp_path)
    code, _, err = _eval(
        capsys,
        "--method",
        "identity",
        "--benchmark",
        "unsplash",
        "--dataset",
        str(ds),
        "--images",
        str(imgs),
        "-o",
        str(tmp_path / "rep_u"),
    )
    assert code == 0, err
    _check_report(tmp_path / "rep_u", 2)


def test_compare_prints_one_table(shared_data, tmp_path, capsys):
    fcdb_root(shared_data, tmp_path / "root", n_photos=3)
    runs = []
    for m in ("identity", "center:0.8"):
        runs.append(str(tmp_path / m.replace(":", "_")))
        code, _, err = _eval(
            capsys,
            "--method",
            m,
            "--benchmark",
            "fcdb",
            "--all-images",
            "--data-root",
            str(tmp_path / "root"),
            "-o",
            runs[-1],
        )
        assert code == 0, err
    code, out, _ = _eval(capsys, "--compare", *runs)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["run", "benchmark", "method", "photos"]
    body = [ln for ln in lines[2:]]
    assert len(body) == 2 and "identity" in body[0] and "center:0.8" in body[1]
    for run, line in zip(runs, body):
        s = json.loads((tmp_path / run / "summary.json").read_text())
        assert f"{s['mean_iou']:.4f}" in line and f"{s['mean_bde']:.4f}" in line
    assert main(["eval", "--compare", str(tmp_path / "nope")]) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--method", "identity", "--benchmark", "fcdb"], "--data-root"),
        (["--method", "bogus", "--benchmark", "fcdb", "--data-root", "."], "unknown baseline"),
        (["--method", "identity", "--epoch", "3", "--benchmark", "fcdb", "--data-root", "."], "--epoch"),
        (["some_model", "--method", "identity"], "not both"),
    ],
)
def test_user_errors_are_one_line(capsys, argv, message):
    code, _, err = _eval(capsys, *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_segment_option_writes_and_uses_detections(shared_data, tmp_path, capsys, monkeypatch):
    """--segment runs the data engine's segment stage on the benchmark folder, then matches its detections."""
    import numpy as np

    import gencrop.engine.segment as seg
    from gencrop.engine.detections import Detection

    def fake_segmenter(images):
        out = []
        for im in images:
            W, H = im.size
            box = Box(W * 0.2, H * 0.1, W * 0.3, H * 0.8)
            poly = np.array([[box.x, box.y], [box.x2, box.y], [box.x2, box.y2], [box.x, box.y2]], np.float32)
            out.append([Detection(box, 0.9, "person", poly)])
        return out

    monkeypatch.setattr(seg, "make_segmenter", lambda *a, **k: fake_segmenter)
    gaicd_root(shared_data, tmp_path / "root")
    code, _, err = _eval(
        capsys,
        "--method",
        "subject",
        "--benchmark",
        "gaicd",
        "--data-root",
        str(tmp_path / "root"),
        "--segment",
        "-o",
        str(tmp_path / "rep"),
    )
    assert code == 0, err
    assert (tmp_path / "root" / "GAICD" / "detect.json.gz").is_file()
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["info"]["subject_masks"].startswith("detections (")
