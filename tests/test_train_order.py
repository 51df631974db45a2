"""The order of training examples: a new seeded order every epoch, the same after a resume, disjoint process shares."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from gencrop.data.outpaint import read_outpaint_set  # noqa: E402
from gencrop.data.training_set import TrainingSet  # noqa: E402
from gencrop.training import loop  # noqa: E402
from gencrop.training.loop import TrainOptions, train  # noqa: E402
from test_train_synth import make_dataset  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("orderdata"), n_photos=16, per_photo=2, canvas=96)


def _training_set(data, **kwargs) -> TrainingSet:
    return TrainingSet(read_outpaint_set(data, "train"), 64, use_subject=True, **kwargs)


def _order(ds: TrainingSet, epoch: int) -> list[int]:
    ds.set_epoch(epoch)
    return [choice.photo_index for choice in ds._items]


def test_every_epoch_has_its_own_order_and_all_photos(data):
    ds = _training_set(data, seed=3, shuffle=True)
    orders = [_order(ds, epoch) for epoch in (1, 2, 3)]
    assert len({tuple(o) for o in orders}) == 3
    for order in orders:
        assert sorted(order) == list(range(len(ds._photos)))


def test_the_order_depends_only_on_seed_and_epoch(data):
    walked = _training_set(data, seed=3, shuffle=True)
    for epoch in (1, 2, 3):
        _order(walked, epoch)
    fresh = _training_set(data, seed=3, shuffle=True)  # a resumed process starts at epoch 3 directly
    assert _order(fresh, 3) == _order(walked, 3)
    assert _order(_training_set(data, seed=4, shuffle=True), 3) != _order(fresh, 3)


def test_without_shuffle_the_set_order_is_kept(data):
    ds = _training_set(data, seed=3)
    assert _order(ds, 1) == _order(ds, 2) == list(range(len(ds._photos)))
    limited = _training_set(data, seed=3, max_len=5, shuffle=True)
    assert len(_order(limited, 1)) == 5 and _order(limited, 1) != sorted(_order(limited, 1))


@pytest.mark.parametrize("num_processes", [2, 3, 5])
def test_process_shares_are_disjoint_and_equal(data, num_processes):
    ds = _training_set(data, shuffle=True)
    ds.set_epoch(1)
    shares = [ds.process_share(rank, num_processes) for rank in range(num_processes)]
    seen = [i for share in shares for i in share]
    assert len(seen) == len(set(seen)), "an example is trained on by two processes"
    assert len({len(share) for share in shares}) == 1  # processes run the same number of steps
    assert len(seen) == len(ds) - len(ds) % num_processes
    with pytest.raises(ValueError):
        ds.process_share(num_processes, num_processes)


@pytest.mark.slow
def test_a_resumed_run_trains_on_the_uninterrupted_sequence(tmp_path, monkeypatch):
    """The photo sequence the loop renders, epoch by epoch, with and without an interruption."""
    data = make_dataset(tmp_path / "d", n_photos=8, per_photo=1, canvas=96)  # one file a photo: files give the order
    seen: list[tuple[int, str]] = []
    render = TrainingSet.render

    def recording_render(self, variation, rng):
        if self.augment:  # training items, not validation
            seen.append((self.epoch, variation.img_file))
        return render(self, variation, rng)

    monkeypatch.setattr(TrainingSet, "render", recording_render)
    monkeypatch.setattr(loop, "plot_history", lambda history, path: None)

    def options(out: str, epochs: int, resume: bool = False) -> TrainOptions:
        return TrainOptions(
            data=str(data), out=str(tmp_path / out), epochs=epochs, resume=resume, arch="test_efficientnet",
            pretrained="none", dim=64, batch_size=4, workers=0, quiet=True,
        )  # fmt: skip

    train(options("whole", 2))
    uninterrupted = list(seen)
    seen.clear()
    train(options("resumed", 1))
    train(options("resumed", 2, resume=True))
    assert seen == uninterrupted
    by_epoch = [[f for e, f in uninterrupted if e == epoch] for epoch in (1, 2)]
    assert by_epoch[0] != by_epoch[1], "two epochs trained in the same order"
    assert sorted(by_epoch[0]) != by_epoch[0] or sorted(by_epoch[1]) != by_epoch[1]  # not the set's order


def test_a_run_saved_before_the_order_and_dropout_resumes_only_as_it_was(data, tmp_path):
    """Its train_args.json lacks the options: it trained in a fixed order, without dropout, mask at zero."""
    import json

    import torch

    from gencrop.training.loop import _check_resume

    run = tmp_path / "old"
    run.mkdir()
    torch.save({"epoch": 1}, run / loop.STATE_NAME)
    (run / loop.ARGS_NAME).write_text(json.dumps({"arch": "resnet50", "dim": 256}))
    with pytest.raises(ValueError, match="--positional-dropout 0.0, --mask-channel-init zeros, --no-shuffle"):
        _check_resume(TrainOptions(data=str(data), out=str(run), resume=True), run)
    old = TrainOptions(
        data=str(data), out=str(run), resume=True, shuffle=False, positional_dropout=0.0, mask_channel_init="zeros"
    )
    assert _check_resume(old, run) == {"epoch": 1}
