"""The training loss against the original implementation's values."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from gencrop.training.losses import gencrop_loss, subject_boundary_loss  # noqa: E402


@pytest.fixture(scope="module")
def golden(golden_dir):
    return json.loads((golden_dir / "loss.json").read_text())


def _t(v):
    return torch.tensor(v, dtype=torch.float32)


def _xywh_to_norm_xyxy(values, size):
    b = torch.tensor(values, dtype=torch.float32) / size
    return torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], dim=1)


@pytest.mark.golden
def test_golden_subject_boundary_loss(golden):
    cases = golden["subject_boundary_loss_direct"]
    assert cases
    for case in cases:
        a = case["args_positional"]
        got = subject_boundary_loss(
            _t(a["subject_mask_xyxy"]),
            _t(a["crop_xyxy"]),
            _t(a["valid_xyxy"]),
            _t(a["pred_xyxy"]),
            margin=case["margin"],
        )
        assert float(got) == pytest.approx(case["value"], abs=1e-7), case["name"]


@pytest.mark.golden
def test_golden_training_loss(golden):
    for case in golden["training_loss_via_GenCrop_epoch"]:
        h, b = case["H"], case["batch"]
        crop = _xywh_to_norm_xyxy(b["crop_xywh"]["values"], h)
        valid = _xywh_to_norm_xyxy(b["valid_xywh"]["values"], h)
        mask = _xywh_to_norm_xyxy(b["subject_mask_xywh"]["values"], h)
        comp = case["components"]
        torch.testing.assert_close(crop, _t(comp["crop_xyxy_scaled"]))
        pred, cells = _t(case["pred"]), _t(case["pred_all"])
        total, parts = gencrop_loss(pred, cells, crop, valid, mask, use_sbl=True)
        assert float(total) == pytest.approx(case["with_sbl"]["epoch_return_value"], abs=1e-6), case["name"]
        assert parts["l1"] == pytest.approx(comp["l1_pred"], abs=1e-7)
        assert parts["l1_cells"] == pytest.approx(comp["l1_all_anchors"], abs=1e-7)
        assert parts["sbl"] == pytest.approx(comp["sbl_as_called"], abs=1e-7)
        total, _ = gencrop_loss(pred, cells, crop, valid, mask, use_sbl=False)
        assert float(total) == pytest.approx(case["without_sbl"]["epoch_return_value"], abs=1e-6)


def test_loss_gradients_flow_and_vanish_at_truth():
    crop = torch.tensor([[0.1, 0.2, 0.8, 0.9]])
    pred = crop.clone().requires_grad_(True)
    cells = crop[:, None].repeat(1, 4, 1).requires_grad_(True)
    total, _ = gencrop_loss(
        pred, cells, crop, torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([[0.4, 0.4, 0.6, 0.6]])
    )
    assert float(total.detach()) == 0.0
    moved = (crop + 0.05).requires_grad_(True)
    total, _ = gencrop_loss(
        moved, cells, crop, torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([[0.4, 0.4, 0.6, 0.6]])
    )
    total.backward()
    assert moved.grad is not None and moved.grad.abs().sum() > 0
