"""RoD-align: golden vectors from the original compiled kernel, dtypes and devices."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gencrop.modeling.rod_align import RoDAlign, RoDAlignAvg, rod_align, rod_align_avg  # noqa: E402

CASES = [f"c{i}" for i in range(7)]


@pytest.fixture(scope="module")
def golden_rod(golden_dir):
    return np.load(golden_dir / "rod_align.npz")


@pytest.mark.parametrize("case", CASES)
def test_golden_rod_align_forward_and_gradients(golden_rod, case):
    z = golden_rod
    rois = torch.tensor(z[f"{case}/rois"])
    grad_out = torch.tensor(z[f"{case}/grad_out"])
    for fn, size, out_key, grad_key in [
        (rod_align, 5, "rod_out", "rod_grad_features"),
        (rod_align_avg, 5, "rodavg_out", "rodavg_grad_features"),
        (rod_align, 6, "rod6_out", None),
    ]:
        feats = torch.tensor(z[f"{case}/features"], requires_grad=True)
        out = fn(feats, rois, size, 1 / 16)
        np.testing.assert_allclose(out.detach().numpy(), z[f"{case}/{out_key}"], atol=1e-5, rtol=0)
        if grad_key:
            (out * grad_out).sum().backward()
            np.testing.assert_allclose(feats.grad.numpy(), z[f"{case}/{grad_key}"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_golden_roi_align_call_convention(golden_rod, case):
    from torchvision.ops import roi_align

    z = golden_rod
    feats, rois = torch.tensor(z[f"{case}/features"]), torch.tensor(z[f"{case}/rois"])
    out = roi_align(feats, rois, output_size=(5, 5), spatial_scale=1 / 16)
    np.testing.assert_allclose(out.numpy(), z[f"{case}/roi_align_out"], atol=1e-5, rtol=0)


def test_box_over_whole_map_discards_everything_and_outside_box_nothing():
    feats = torch.randn(1, 3, 4, 4)
    whole = torch.tensor([[0, 0, 0, 64, 64]], dtype=torch.float32)
    outside = torch.tensor([[0, 100, 100, 200, 200]], dtype=torch.float32)
    assert torch.allclose(rod_align(feats, whole, 5, 1 / 16), torch.zeros(1, 3, 5, 5), atol=1e-6)
    full = rod_align(feats, outside, 5, 1 / 16)
    assert torch.count_nonzero(full) == full.numel()


def test_gradcheck_double():
    feats = torch.randn(2, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 10, 8, 40, 50], [1, 0, 0, 30, 20], [1, 50, 40, 90, 80]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: rod_align_avg(f, rois, 3, 1 / 16), (feats,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_matches_float32(dtype):
    torch.manual_seed(0)
    feats = torch.randn(2, 8, 8, 8)
    rois = torch.tensor([[0, 10, 8, 40, 50], [1, 0, 0, 128, 64], [1, 30, 40, 90, 80]])
    ref = rod_align_avg(feats, rois, 5, 1 / 16)
    f = feats.to(dtype).requires_grad_()
    out = rod_align_avg(f, rois.to(dtype), 5, 1 / 16)
    assert out.dtype == dtype
    out.float().sum().backward()
    assert f.grad is not None and f.grad.dtype == dtype
    tol = 2e-2 if dtype == torch.float16 else 6e-2
    np.testing.assert_allclose(out.float().detach().numpy(), ref.numpy(), atol=tol)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    feats = torch.randn(2, 8, 8, 8)
    rois = torch.tensor([[0, 10, 8, 40, 50], [1, 0, 0, 128, 64]], dtype=torch.float32)
    cpu = rod_align_avg(feats, rois, 5, 1 / 16)
    gpu = rod_align_avg(feats.cuda(), rois.cuda(), 5, 1 / 16)
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu.numpy(), atol=1e-5)


def test_modules_wrap_functions():
    feats = torch.randn(1, 2, 4, 4)
    rois = torch.tensor([[0, 8, 8, 30, 30]], dtype=torch.float32)
    assert torch.equal(RoDAlign(5, 1 / 16)(feats, rois), rod_align(feats, rois, 5, 1 / 16))
    assert torch.equal(RoDAlignAvg(5, 1 / 16)(feats, rois), rod_align_avg(feats, rois, 5, 1 / 16))


def test_roi_order_does_not_matter():
    """Boxes grouped per image (the fast path) and in any order give the same rows."""
    torch.manual_seed(0)
    feats = torch.randn(3, 4, 8, 8)
    xy = torch.rand(12, 2) * 100
    rois = torch.cat([torch.arange(3).repeat_interleave(4)[:, None].float(), xy, xy + 20], 1)
    grouped = rod_align_avg(feats, rois, 5, 1 / 16)
    perm = torch.randperm(12)
    shuffled = rod_align_avg(feats, rois[perm], 5, 1 / 16)
    torch.testing.assert_close(shuffled, grouped[perm], atol=1e-6, rtol=0)
    uneven = rod_align_avg(feats, rois[:7], 5, 1 / 16)
    torch.testing.assert_close(uneven, grouped[:7], atol=1e-6, rtol=0)
