"""Boxes and benchmark metrics, including the golden cases from the original evaluation code."""

import json
import math

import pytest

from gencrop.geometry import (
    Box,
    boundary_displacement,
    clamp_prediction,
    iou,
    legacy_prediction_to_xywh,
    score_against_ground_truths,
    summarize,
)


def test_box_views_and_ops():
    b = Box(10, 20, 30, 40)
    assert b.xyxy == (10, 20, 40, 60)
    assert b.area == 1200
    assert Box.from_xyxy(*b.xyxy) == b
    assert b.scale(2).xywh == (20, 40, 60, 80)
    assert b.translate(-10, 5).xywh == (0, 25, 30, 40)
    assert b.clamp(25, 50).xyxy == (10, 20, 25, 50)
    assert Box(-5, -5, 10, 10).clamp(100, 100).xyxy == (0, 0, 5, 5)
    assert Box(200, 200, 10, 10).clamp(100, 100).is_empty()
    assert b.intersection(Box(100, 100, 5, 5)) == 0
    assert iou(b, b) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert Box(0, 0, 10, 10).contains(Box(2, 2, 3, 3))
    assert Box(0, 0, 4, 2).expand(2).xyxy == (-2, -1, 6, 3)


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "1,2,0,4", "1,2,-3,4", "nan,1,2,3", ""])
def test_box_parse_rejects_malformed(text):
    with pytest.raises(ValueError):
        Box.parse(text)


def test_box_parse():
    assert Box.parse("1, 2,3.5,4").xywh == (1, 2, 3.5, 4)


def test_displacement_definition():
    # x edges off by 10 and 20 of W=100, y edges off by 5 and 5 of H=50
    d = boundary_displacement(Box(10, 5, 80, 40), Box(0, 0, 70, 50), 100, 50)
    assert d == pytest.approx((10 + 20) / 100 + (5 + 5) / 50)


def test_several_truths_tie_prefers_lower_displacement():
    pred = Box(0, 0, 10, 10)
    gts = [Box(20, 20, 5, 5), Box(11, 0, 5, 5)]  # both IoU 0; second is nearer
    i, d, k = score_against_ground_truths(pred, gts, 100, 100)
    assert i == 0 and k == 1


def _orig_pred(case, b):
    v = case["inputs"]["valid_xywh"]["values"][b]
    s = case["inputs"]["scale"]["values"][b]
    x, y, w, h = case["pred_xywh"][b]
    return Box((x - v[0]) / s, (y - v[1]) / s, w / s, h / s)


def _truths(values):
    return [values] if not isinstance(values[0], list) else values


def test_golden_metrics_compute_iou_and_disp(golden_dir):
    data = json.loads((golden_dir / "metrics.json").read_text())
    all_ious, all_disps = [], []
    for case in data["compute_iou_and_disp_cases"]:
        B, _, H, W = case["img_shape"]
        for b in range(B):
            if case["branch"] == "orig_crop_xywh":
                gts = _truths(case["inputs"]["orig_crop_xywh"]["values"][b])
                pred = _orig_pred(case, b)
                width, height = case["inputs"]["orig_w"]["values"][b], case["inputs"]["orig_h"]["values"][b]
            else:
                gts = _truths(case["inputs"]["crop_xywh"]["values"][b])
                pred = Box(*case["pred_xywh"][b])
                width, height = W, H
            i, d, _ = score_against_ground_truths(pred, gts, width, height)
            assert i == pytest.approx(case["output"]["ious"][b], abs=1e-6), case["name"]
            assert d == pytest.approx(case["output"]["disps"][b], abs=1e-6), case["name"]
            all_ious.append(i)
            all_disps.append(d)
    summary = summarize(all_ious, all_disps)
    ref = data["summary_all_cases"]
    assert summary["num_images"] == ref["num_images"]
    assert summary["mean_iou"] == pytest.approx(ref["mean_iou"], abs=1e-7)
    assert summary["mean_bde"] == pytest.approx(ref["mean_disp_div4"], abs=1e-7)
    assert f"Mean IoU: {summary['mean_iou']:.4f}" == ref["printed"][0]
    assert f"Mean disp: {summary['mean_bde']:.4f}" == ref["printed"][1]


def test_golden_metrics_clamp_prediction(golden_dir):
    data = json.loads((golden_dir / "metrics.json").read_text())
    for case in data["clamp_prediction_cases"]:
        for pred, valid, want in zip(
            case["pred_xywh"]["values"], case["valid_xywh"]["values"], case["output_xywh"]["values"]
        ):
            got = clamp_prediction(Box(*pred), Box(*valid))
            assert got.xywh == pytest.approx(want, abs=1e-4), case["name"]


def test_golden_metrics_predict_pipeline(golden_dir):
    data = json.loads((golden_dir / "metrics.json").read_text())
    for case in data["predict_pipeline_cases"]:
        ev = case["eval_inputs"]
        for b, norm in enumerate(case["pred_norm_xyxy"]):
            pred = legacy_prediction_to_xywh(norm, case["H"])
            assert pred.xywh == pytest.approx(case["predict_output_xywh"]["values"][b], abs=1e-4), case["name"]
            valid = Box(*case["valid_xywh"]["values"][b])
            clamped = clamp_prediction(pred, valid)
            assert clamped.xywh == pytest.approx(case["clamped_xywh"]["values"][b], abs=1e-4), case["name"]
            if "orig_crop_xywh" in ev:
                s = ev["scale"]["values"][b]
                mapped = Box((clamped.x - valid.x) / s, (clamped.y - valid.y) / s, clamped.w / s, clamped.h / s)
                truths = _truths(ev["orig_crop_xywh"]["values"][b])
                width, height = ev["orig_w"]["values"][b], ev["orig_h"]["values"][b]
            else:  # plain branch: model-input pixels
                mapped, truths = clamped, _truths(ev["crop_xywh"]["values"][b])
                width = height = case["H"]
            i, d, _ = score_against_ground_truths(mapped, truths, width, height)
            assert i == pytest.approx(case["ious"][b], abs=1e-5), case["name"]
            assert d == pytest.approx(case["disps"][b], abs=1e-5), case["name"]


def test_summarize_empty_is_nan():
    assert math.isnan(summarize([], [])["mean_iou"])
