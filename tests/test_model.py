"""The GenCrop network: golden outputs of the original implementation, checkpoints, API."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gencrop.modeling import GenCrop, GenCropConfig  # noqa: E402
from gencrop.modeling.checkpoints import ORIGINAL_KEY_MAP, convert_original_state_dict, load_model  # noqa: E402
from gencrop.modeling.gencrop import cell_anchors, subject_cell_mask  # noqa: E402
from gencrop.runtime.files import DEFAULT_MODEL_DIR  # noqa: E402


def _golden_state(golden_dir, in_channels):
    from safetensors.torch import load_file

    state = load_file(str(golden_dir / f"model_mbv2_in{in_channels}.safetensors"))
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def _golden_model(golden_dir, in_channels):
    config = GenCropConfig(arch="mobilenetv2_100", image_size=128, in_channels=in_channels, transpose_anchors=True)
    model = GenCrop(config)
    model.load_state_dict(convert_original_state_dict(_golden_state(golden_dir, in_channels)))
    return model.eval()


@pytest.mark.parametrize("in_channels", [3, 4])
@pytest.mark.parametrize("case", ["main", "edge"])
def test_golden_model_outputs(golden_dir, in_channels, case):
    z = np.load(golden_dir / "model_io.npz")
    model = _golden_model(golden_dir, in_channels)
    p = f"in{in_channels}/{case}/"
    x, s = torch.tensor(z[p + "input"]), torch.tensor(z[p + "subject_xyxy"])
    with torch.no_grad():
        out = model(x, s)
        feats = model.cell_features(x)
    mask = subject_cell_mask(s, model.config.grid_size)
    np.testing.assert_allclose(out.crop.numpy(), z[p + "r"], atol=1e-5)
    np.testing.assert_allclose(out.cell_crops.numpy(), z[p + "x"], atol=1e-5)
    np.testing.assert_allclose(out.weights.numpy(), z[p + "w"], atol=1e-6)
    np.testing.assert_allclose(out.logits.numpy(), z[p + "score_logits"], atol=1e-5)
    np.testing.assert_allclose((out.logits * mask).numpy(), z[p + "softmax_in"], atol=1e-5)
    np.testing.assert_allclose(feats.numpy(), z[p + "f"], atol=1e-4)


@pytest.mark.parametrize("in_channels", [3, 4])
def test_golden_crop_scorer_direct(golden_dir, in_channels):
    z = np.load(golden_dir / "model_io.npz")
    model = _golden_model(golden_dir, in_channels)
    p = f"in{in_channels}/score_direct/"
    with torch.no_grad():
        logits = model.scorer(torch.tensor(z[p + "xyxy"]), torch.tensor(z[p + "f"]), 128)
    np.testing.assert_allclose(logits.numpy(), z[p + "score_logits"], atol=1e-5)


def test_golden_anchors_and_positional_buffers(golden_dir):
    z = np.load(golden_dir / "anchors.npz")
    for size in (128, 256):
        np.testing.assert_allclose(cell_anchors(size // 16, size).numpy(), z[f"anchors_{size}"][0], atol=1e-7)
    state = _golden_state(golden_dir, 3)
    model = GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=128))
    np.testing.assert_allclose(model.pos_encoding.pe.numpy(), state["crop.pe.pe"][:, 0].numpy(), atol=1e-5)


def test_golden_original_keys_all_mapped(golden_dir):
    state = _golden_state(golden_dir, 4)
    mapped = convert_original_state_dict(state)
    model = GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=128, in_channels=4))
    assert set(mapped) == set(model.state_dict())
    assert all(
        any(k.startswith(old) for old in ORIGINAL_KEY_MAP)
        for k in state
        if k not in ("crop.pe.pe", "regress.all_anchors")
    )


def test_golden_original_run_directory_picks_best_epoch(golden_dir, tmp_path):
    """A run directory of the original research code loads, with its best epoch."""
    state = _golden_state(golden_dir, 3)
    torch.save(state, tmp_path / "model1.pt")
    other = {k: torch.zeros_like(v) if v.is_floating_point() else v for k, v in state.items()}
    torch.save(other, tmp_path / "model2.pt")
    (tmp_path / "config.json").write_text(
        json.dumps({"arch": "mobilenetv2_100", "img_dim": 128, "use_subject": False, "dataset": "x"})
    )
    (tmp_path / "loss.json").write_text(
        json.dumps(
            [
                {"epoch": 0, "train": 1.0, "val": float("nan")},
                {"epoch": 1, "train": 0.9, "val": 0.5},
                {"epoch": 2, "train": 0.8, "val": 0.6},
            ]
        )
    )
    z = np.load(golden_dir / "model_io.npz")
    model = GenCrop.from_pretrained(tmp_path)
    with torch.no_grad():
        out = model(torch.tensor(z["in3/main/input"]), torch.tensor(z["in3/main/subject_xyxy"]))
    np.testing.assert_allclose(out.crop.numpy(), z["in3/main/r"], atol=1e-5)
    zeroed = GenCrop.from_pretrained(tmp_path, epoch=2)
    assert float(zeroed.fuse_out.weight.detach().abs().sum()) == 0.0
    with pytest.raises(FileNotFoundError):
        GenCrop.from_pretrained(tmp_path, epoch=7)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=64, transpose_anchors=False)).eval()


def test_save_pretrained_roundtrip_identical(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = GenCrop.from_pretrained(tmp_path / "m")
    assert loaded.config == tiny_model.config
    x, s = torch.randn(2, 3, 64, 64), torch.tensor([[5.0, 5, 40, 60], [0, 0, 64, 64]])
    with torch.no_grad():
        a, b = tiny_model(x, s), loaded(x, s)
    assert torch.equal(a.crop, b.crop) and torch.equal(a.weights, b.weights)


def test_save_pretrained_half_precision_loads_as_float32(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "h", dtype=torch.float16)
    loaded = GenCrop.from_pretrained(tmp_path / "h")
    assert loaded.fuse8.weight.dtype == torch.float32
    torch.testing.assert_close(loaded.fuse8.weight, tiny_model.fuse8.weight, atol=1e-3, rtol=1e-3)


def test_missing_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_model(None, tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_model(None, tmp_path)


def test_subject_cell_mask_conventions():
    m = subject_cell_mask(torch.tensor([[0.0, 0, 128, 128], [32, 32, 32, 32], [20.9, 30.2, 47.5, 40]]), 8)
    assert torch.allclose(m[0], torch.full((64,), 1 / 64.0001))
    assert torch.all(m[1] == 0)
    cells = (m[2].view(8, 8) > 0).nonzero().tolist()
    assert cells == [[1, 1], [1, 2], [2, 1], [2, 2]]  # rows 30//16..ceil(40/16)-1, cols 20//16..ceil(47/16)-1


def test_any_timm_cnn_works_through_feature_info():
    for arch in ("resnet18", "tf_efficientnet_lite0"):
        model = GenCrop(GenCropConfig(arch=arch, image_size=64)).eval()
        with torch.no_grad():
            out = model(torch.randn(1, 3, 64, 64), torch.tensor([[10.0, 10, 50, 50]]))
        assert out.crop.shape == (1, 4) and out.weights.shape == (1, 4, 4)
        assert torch.allclose(out.weights.sum(), torch.tensor(1.0))


def test_training_step_backpropagates_into_every_part(tiny_model):
    model = GenCrop(tiny_model.config).train()
    out = model(torch.randn(2, 3, 64, 64), torch.tensor([[5.0, 5, 40, 60], [0, 0, 64, 64]]))
    (out.crop.sum() + out.cell_crops.sum()).backward()
    for name in ("backbone.body.conv_stem.weight", "fuse_out.weight", "box_head.weight", "scorer.fc2.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all(), name


def test_inference_optimisation_keeps_outputs():
    import copy

    from gencrop.modeling.fusion import optimize_for_inference

    torch.manual_seed(0)
    model = GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=64)).eval()
    for m in model.modules():  # non-trivial statistics, so that folding is really tested
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    fast = optimize_for_inference(copy.deepcopy(model), 64, 3)
    remaining = sum(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert remaining < sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) // 4
    x, s = torch.randn(2, 3, 64, 64), torch.tensor([[5.0, 5, 40, 60], [0, 0, 64, 64]])
    with torch.no_grad():
        a, b = model(x, s), fast(x.contiguous(memory_format=torch.channels_last), s)
    torch.testing.assert_close(b.crop, a.crop, atol=1e-5, rtol=0)
    torch.testing.assert_close(b.logits, a.logits, atol=1e-4, rtol=1e-4)


def test_positional_dropout_follows_the_config():
    """New models drop cell tokens as the original's PositionalEncoding (0.1); a config.json without the field, 0."""
    assert GenCropConfig().positional_dropout == 0.1
    assert GenCropConfig.from_dict({}).positional_dropout == 0.0
    shipped = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert "positional_dropout" not in shipped and GenCropConfig.from_dict(shipped).positional_dropout == 0.0
    tokens = torch.randn(2, 16, 32)  # 4 x 4 cells of a 64 px input
    torch.manual_seed(0)
    for p, differs in ((0.1, True), (0.0, False)):
        model = GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=64, positional_dropout=p)).train()
        assert model.pos_encoding.dropout.p == p
        a, b = model.pos_encoding(tokens), model.pos_encoding(tokens)
        assert (not torch.equal(a, b)) == differs
        assert torch.equal(model.eval().pos_encoding(tokens), tokens + model.pos_encoding.pe[None])


@pytest.mark.parametrize("how", ["timm", "zeros"])
def test_mask_channel_start_from_rgb_weights(tmp_path, how):
    """The subject-mask channel of ImageNet weights: timm's in_chans=4 adaptation, or zero weight (older models)."""
    import timm

    from gencrop.modeling.backbone import load_backbone_weights

    torch.manual_seed(0)
    rgb = timm.create_model("mobilenetv2_100", pretrained=False).state_dict()
    path = tmp_path / "rgb.pth"
    torch.save(rgb, path)
    model = GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=64, in_channels=4, mask_channel_init=how))
    load_backbone_weights(model, str(path))
    stem, pretrained = model.backbone.body.conv_stem.weight.detach(), rgb["conv_stem.weight"]
    assert stem.shape[1] == 4
    if how == "timm":  # RGB filters repeated onto the 4th channel, all scaled by 3/4 (timm's adapt_input_conv)
        assert torch.allclose(stem[:, :3], pretrained * 0.75)
        assert torch.allclose(stem[:, 3], pretrained[:, 0] * 0.75) and stem[:, 3].abs().sum() > 0
    else:
        assert torch.equal(stem[:, :3], pretrained) and not stem[:, 3].any()
    assert torch.equal(model.backbone.body.blocks[1][0].conv_pw.weight, rgb["blocks.1.0.conv_pw.weight"])


def test_unknown_mask_channel_start_is_refused():
    with pytest.raises(ValueError, match="mask_channel_init"):
        GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=64, mask_channel_init="ones"))
