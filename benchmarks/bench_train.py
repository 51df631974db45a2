"""Training throughput: does the data loader keep up with the network?

Measures, for each architecture, samples/s of (1) the data loader alone,
(2) the training step alone (forward, loss, backward, AdamW) on ready
tensors, and (3) both together, as `gencrop train` runs them. The loader
keeps up when (1) is well above (2) and (3) is close to (2).

    python benchmarks/bench_train.py                       # synthetic 512 px canvases
    python benchmarks/bench_train.py --data data/<name>/outpaint --archs tf_efficientnet_lite0
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def synthetic_data(folder: Path, n_photos: int, canvas: int) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_train_synth import make_dataset

    return make_dataset(folder, n_photos=n_photos, per_photo=1, canvas=canvas, splits=(("train", 1.0),))


def loader_rate(dataset, batch_size: int, workers: int, batches: int) -> float:
    from gencrop.training.loop import _loader

    loader = _loader(dataset, batch_size, workers, pin=False)
    it = iter(loader)
    next(it)  # worker start-up is not throughput
    t, n = time.perf_counter(), 0
    for _ in range(batches):
        try:
            n += next(it)["image"].shape[0]
        except StopIteration:
            break
    return n / (time.perf_counter() - t)


def step_rate(model, batch: dict, steps: int, dim: int) -> float:
    from gencrop.training.losses import batch_loss

    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step():
        out = model(batch["image"], batch["subject"])
        loss, _ = batch_loss(out, batch, dim)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch["image"].shape[0] / (time.perf_counter() - t)


def full_rate(model, dataset, batch_size: int, workers: int, steps: int, dim: int) -> float:
    from gencrop.training.loop import _loader
    from gencrop.training.losses import batch_loss

    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    it = iter(_loader(dataset, batch_size, workers, pin=False))
    n, t = 0, None
    for i in range(steps + 1):
        try:
            batch = next(it)
        except StopIteration:
            break
        out = model(batch["image"], batch["subject"])
        loss, _ = batch_loss(out, batch, dim)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i == 0:
            t = time.perf_counter()  # the first step includes start-up
        else:
            n += batch["image"].shape[0]
    return n / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="a dataset's outpaint folder (default: a synthetic one of 512 px canvases)")
    ap.add_argument(
        "--archs",
        nargs="*",
        default=["tf_efficientnet_lite0", "resnet50"],
        help="architectures to time (none: the loader only)",
    )
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3, help="timed training steps per measurement")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the training process")
    ap.add_argument("--use-subject", action="store_true")
    args = ap.parse_args()

    from gencrop.data.outpaint import read_outpaint_set
    from gencrop.data.training_set import TrainingSet, collate
    from gencrop.modeling import GenCropConfig
    from gencrop.modeling.checkpoints import model_class

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else synthetic_data(Path(tmp), 4 * args.batch_size, 512)
        ds = TrainingSet(read_outpaint_set(data, "train"), args.dim, use_subject=args.use_subject, seed=0)
        n_batches = max(1, min(len(ds) // args.batch_size, 4 * args.steps))
        print(
            f"data: {data} ({len(ds)} photos/epoch), dim {args.dim}, batch {args.batch_size}, "
            f"{args.workers} workers, {args.threads} torch threads"
        )
        rate0 = loader_rate(ds, args.batch_size, 0, n_batches)
        rate_w = loader_rate(ds, args.batch_size, args.workers, n_batches) if args.workers else rate0
        print(f"loader alone: {rate0:.1f} samples/s in-process, {rate_w:.1f} samples/s with {args.workers} workers")
        batch = collate([ds[i] for i in range(min(args.batch_size, len(ds)))])
        for arch in args.archs:
            config = GenCropConfig(arch=arch, image_size=args.dim, in_channels=4 if args.use_subject else 3)
            model = model_class("gencrop")(config)
            s = step_rate(model, batch, args.steps, args.dim)
            f = full_rate(model, ds, args.batch_size, args.workers, args.steps, args.dim)
            keeps_up = "yes" if rate_w >= 1.5 * s and f >= 0.8 * s else "NO"
            print(f"{arch}: step alone {s:.2f} samples/s, loader+step {f:.2f} samples/s; loader keeps up: {keeps_up}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
