"""The training loop: one CPU, one GPU, or many processes under Hugging Face Accelerate.

Run directory layout (``RUN_DIR``)::

    config.json, model.safetensors   the best epoch so far (lowest validation loss), so
                                     ``GenCrop.from_pretrained(RUN_DIR)`` / ``Cropper.from_pretrained(RUN_DIR)`` work
    epoch{N}/config.json, epoch{N}/model.safetensors   every epoch (N from 1); ``from_pretrained(RUN_DIR, epoch=N)``
    loss.json        [{"epoch", "train_loss", "val_loss", "val_iou", "val_iou_full_view", "val_empty_frames", ...}]
    loss.png         the curves
    train_args.json  the options of the run
    training_state.pt  model, optimizer, scheduler, grad-scaler and RNG state after the last complete
                       epoch (written atomically, last): ``--resume`` continues from it

Only the main process writes. The data of an epoch, its order included, is fixed
by ``(seed, epoch)``, so a resumed run trains on exactly what the interrupted one
would have. Each process trains on its own share of the epoch's order
(``TrainingSet.process_share``): no example is seen twice in an epoch.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_path, read_json, write_json
from .losses import batch_loss, gencrop_loss
from .schedule import cosine_with_warmup, warmup_steps

__all__ = ["TrainOptions", "train", "default_workers", "STATE_NAME", "HISTORY_NAME", "box_iou_xyxy"]

STATE_NAME = "training_state.pt"
HISTORY_NAME = "loss.json"
ARGS_NAME = "train_args.json"
# options that define the network; a resumed run must keep them
_MODEL_OPTIONS = (
    "arch",
    "dim",
    "use_subject",
    "variant",
    "subject_weighting",
    "positional_dropout",
    "mask_channel_init",
    "model_overrides",
)
# what a run saved before an option existed trained with; resuming it asks for the same
_OPTIONS_BEFORE = {"shuffle": False, "positional_dropout": 0.0, "mask_channel_init": "zeros"}


@dataclass
class TrainOptions:
    """Every option of ``gencrop train`` (defaults are the paper's, except where noted)."""

    data: str
    out: str
    dim: int = 256
    batch_size: int = 32  # per process
    epochs: int = 50
    max_epoch_len: int | None = None
    max_val_len: int | None = None
    arch: str = "resnet50"
    variant: str = "gencrop"
    use_subject: bool = False
    bad_filter: bool = True
    heuristic_filter: bool = True
    sbl: bool = True
    invert: bool = True
    augment: bool = True
    shuffle: bool = True  # a new order of the photos every epoch (the paper's); False: the set's order
    whole_view_prob: float = 0.0  # train on the whole canvas this often (real-context data)
    composite_prob: float = 0.0  # train on several photos on one canvas this often (the subject picks the frame)
    subject_weighting: str = "original"  # GenCropConfig.subject_weighting of a new network
    positional_dropout: float = 0.1  # GenCropConfig.positional_dropout (the original's)
    mask_channel_init: str = "timm"  # GenCropConfig.mask_channel_init (the original's)
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup: int = 500
    workers: int = dataclasses.field(default_factory=lambda: default_workers())
    seed: int = 0
    pretrained: str = "auto"
    init: str | None = None  # start from a trained GenCrop model (fine-tuning); None: from scratch
    resume: bool = False
    cpu: bool = False
    keep_epochs: int = 0  # 0: keep every epoch's checkpoint
    quiet: bool = False
    model_overrides: dict = dataclasses.field(default_factory=dict)  # extra GenCropConfig fields (Python API)


def default_workers(most: int = 4) -> int:
    """Data loader processes: up to ``most``, never more than the CPUs this process may use
    (more only contend for them, and torch warns about it)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(most, cpus))


def box_iou_xyxy(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Element-wise IoU of two (B, 4) xyxy box tensors (0 where they do not overlap)."""
    iw = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    ih = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    inter = iw * ih
    area = lambda t: (t[:, 2] - t[:, 0]).clamp(min=0) * (t[:, 3] - t[:, 1]).clamp(min=0)  # noqa: E731
    union = area(a) + area(b) - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(union))


def _conditioning(model_config, batch: dict, training: bool) -> dict:
    """Extra inputs of the requested-shape variant: the true frame's shape (parts withheld at random in training)."""
    if model_config.variant != "gencrop-c":
        return {}
    from ..modeling.conditioned import crop_shape, training_condition

    shape = training_condition if training else crop_shape
    return {"target_shape": shape(batch["crop"], batch["valid"])}


def _mixed_precision(use_cpu: bool) -> str:
    if use_cpu or not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)


def _loader(dataset, batch_size: int, workers: int, pin: bool, indices: list[int] | None = None):
    """Batches of ``dataset`` in its own order (or of ``indices``, this process's share of it)."""
    from ..data.training_set import collate

    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=indices,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin,
        drop_last=False,
        worker_init_fn=_worker_init if workers else None,
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
    )


def plot_history(history: list[dict], path: Path) -> None:
    """loss.png: train/val loss and val IoU per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train loss")
    if any(h.get("val_loss") is not None for h in history):
        ax.plot(
            epochs,
            [h.get("val_loss") if h.get("val_loss") is not None else np.nan for h in history],
            "o-",
            label="val loss",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    lines, labels = ax.get_legend_handles_labels()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if any(h.get("val_iou") is not None for h in history):
        ax2 = ax.twinx()
        ax2.plot(
            epochs,
            [h.get("val_iou") if h.get("val_iou") is not None else np.nan for h in history],
            "s--",
            color="tab:green",
            label="val IoU",
        )
        ax2.plot(
            epochs,
            [h.get("val_iou_full_view") if h.get("val_iou_full_view") is not None else np.nan for h in history],
            ":",
            color="tab:gray",
            label="val IoU of the whole view (to beat)",
        )
        ax2.set_ylabel("IoU")
        l2, lb2 = ax2.get_legend_handles_labels()
        lines, labels = lines + l2, labels + lb2
    ax.legend(lines, labels, loc="best")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def _best(history: list[dict]) -> dict | None:
    def key(h):
        v = h.get("val_loss")
        if v is None:
            v = h.get("train_loss")
        return v if v is not None and math.isfinite(v) else math.inf

    finite = [h for h in history if key(h) < math.inf]
    return min(finite, key=key) if finite else None


def _load_datasets(opts: TrainOptions, log):
    from ..data.outpaint import read_outpaint_set, read_split_files
    from ..data.sampling import ViewSampler
    from ..data.training_set import TrainingSet

    data_dir = Path(opts.data)
    try:
        read_split_files(data_dir.parent, ("train", "val"))  # a photo trained on must not be validated on
        train_set = read_outpaint_set(
            data_dir, "train", bad_filter=opts.bad_filter, heuristic_filter=opts.heuristic_filter
        )
    except FileNotFoundError as e:
        raise ValueError(str(e)) from None
    log(f"train: {train_set.summary()}")
    _log_problems("train", train_set, log)
    if train_set.num_photos == 0:
        raise ValueError(f"{data_dir}: no usable training examples ({train_set.summary()})")
    train_ds = TrainingSet(
        train_set,
        opts.dim,
        use_subject=opts.use_subject,
        augment=opts.augment,
        invert=opts.invert,
        max_len=opts.max_epoch_len,
        seed=opts.seed,
        sampler=ViewSampler(whole_canvas_prob=opts.whole_view_prob),
        composite_prob=opts.composite_prob,
        shuffle=opts.shuffle,
    )
    room = train_ds.room_report()
    log(
        f"train views: {room['with_room']} of {room['variations']} variations leave room for an enlarged view "
        f"(median max enlargement {room['median_room']:.2f}x)"
    )
    val_ds = None
    if (data_dir.parent / "val.json").is_file():
        val_set = read_outpaint_set(data_dir, "val", bad_filter=opts.bad_filter, heuristic_filter=opts.heuristic_filter)
        log(f"val: {val_set.summary()}")
        _log_problems("val", val_set, log)
        if val_set.num_photos:
            # the training views' distribution without augmentation, so the best epoch is the best
            # at what it was trained for (whole photos when --whole-view-prob is 1)
            val_ds = TrainingSet(
                val_set,
                opts.dim,
                use_subject=opts.use_subject,
                augment=False,
                invert=opts.invert,
                max_len=opts.max_val_len,
                seed=opts.seed + 1,
                sampler=ViewSampler(whole_canvas_prob=opts.whole_view_prob),
            )
    if val_ds is None:
        log("no validation examples: the best epoch is chosen by training loss")
    return train_ds, val_ds


def _log_problems(split: str, data, log) -> None:
    """Warnings of the reader (always shown: they change what is trained on) and photos left out."""
    for w in data.warnings:
        print(f"gencrop train: warning: {split}: {w}", file=sys.stderr, flush=True)
    if data.dropped_photos:
        pid, why = next(iter(data.dropped_photos.items()))
        log(f"{split}: {len(data.dropped_photos)} photos of {split}.json have no usable canvas (e.g. {pid}: {why})")


def _init_from(model, source: str) -> str:
    """Copy the weights of a trained GenCrop model (directory, hub id or "default") into ``model``."""
    from ..modeling.checkpoints import load_model

    init = load_model(None, None if source == "default" else source)
    # the input size may change: no weight depends on it (positions and anchors follow the grid)
    fields = ("arch", "in_channels", "variant")
    diff = [
        f"{f} {getattr(init.config, f)!r} (run: {getattr(model.config, f)!r})"
        for f in fields
        if getattr(init.config, f) != getattr(model.config, f)
    ]
    if diff:
        raise ValueError(f"--init {source}: a different network: " + ", ".join(diff))
    model.load_state_dict({k: v.float() for k, v in init.state_dict().items()})
    size = (
        ""
        if init.config.image_size == model.config.image_size
        else f" (trained at {init.config.image_size} px, now {model.config.image_size} px)"
    )
    return f"weights from the trained model {source}{size}"


def _check_resume(opts: TrainOptions, out: Path) -> dict | None:
    state_file = out / STATE_NAME
    if not opts.resume:
        if state_file.exists() or (out / HISTORY_NAME).exists():
            raise ValueError(f"{out} already holds a training run; add --resume to continue it or pick another -o")
        return None
    if not state_file.exists():
        return None  # nothing finished yet: start from scratch
    args_file = out / ARGS_NAME
    if args_file.exists():
        saved = {**_OPTIONS_BEFORE, **read_json(args_file)}
        changed = [k for k in (*_MODEL_OPTIONS, "shuffle") if k in saved and saved[k] != getattr(opts, k)]
        if changed:
            raise ValueError(
                "cannot resume with a different network or order: the run was trained with "
                + ", ".join(_as_option(k, saved[k]) for k in changed)
            )
    state = torch.load(state_file, map_location="cpu", weights_only=False)
    if state["epoch"] > opts.epochs:
        raise ValueError(
            f"--epochs {opts.epochs} but {out} already holds {state['epoch']} epochs; "
            f"give --epochs {state['epoch']} or more to resume it"
        )
    return state


def _as_option(name: str, value) -> str:
    flag = name.replace("_", "-")
    if isinstance(value, bool):
        return f"--{flag}" if value else f"--no-{flag}"
    return f"--{flag} {value!r}" if isinstance(value, (dict, list)) else f"--{flag} {value}"


def train(opts: TrainOptions) -> list[dict]:
    """Train (or resume) a run; returns the per-epoch history written to ``loss.json``."""
    from accelerate import Accelerator
    from tqdm import tqdm

    from ..modeling import GenCropConfig
    from ..modeling.backbone import load_backbone_weights
    from ..modeling.checkpoints import model_class

    use_cpu = opts.cpu or not torch.cuda.is_available()
    accelerator = Accelerator(cpu=use_cpu, mixed_precision=_mixed_precision(use_cpu))
    main = accelerator.is_main_process
    out = Path(opts.out)

    def log(msg: str) -> None:
        if main and not opts.quiet:
            print(msg, file=sys.stderr, flush=True)

    state = _check_resume(opts, out)
    train_ds, val_ds = _load_datasets(opts, log)

    config = GenCropConfig(
        arch=opts.arch,
        image_size=opts.dim,
        in_channels=4 if opts.use_subject else 3,
        variant=opts.variant,
        **{
            "subject_weighting": opts.subject_weighting,
            "positional_dropout": opts.positional_dropout,
            "mask_channel_init": opts.mask_channel_init,
            **opts.model_overrides,
        },
        extra={
            "training": {
                **{
                    k: v
                    for k, v in dataclasses.asdict(opts).items()
                    if k not in ("out", "resume", "quiet", "workers", "cpu")
                },
                # absolute, so that `gencrop eval RUN_DIR` finds the test split
                "data": str(Path(opts.data).resolve()),
            }
        },
    )
    torch.manual_seed(opts.seed)
    model = model_class(opts.variant)(config)
    if state is None and opts.init:
        log(_init_from(model, opts.init))
    elif state is None:
        try:
            log(load_backbone_weights(model, opts.pretrained))
        except RuntimeError as e:  # no weights for this architecture: a user choice to make, not a crash
            raise ValueError(str(e)) from None
    else:
        model.load_state_dict(state["model"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)

    # batches per epoch per process: each process trains on len // n_proc examples (process_share)
    n_proc = accelerator.num_processes
    if len(train_ds) < n_proc:
        raise ValueError(f"{len(train_ds)} training photos for {n_proc} processes: every process needs one")
    per_epoch = math.ceil(len(train_ds) // n_proc / opts.batch_size)
    total_steps = per_epoch * opts.epochs
    warm = warmup_steps(opts.warmup, total_steps)
    scheduler = cosine_with_warmup(optimizer, warm, total_steps)

    history: list[dict] = []
    start_epoch = 1
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        # the saved multiplier remembers the old length; a resumed run may ask for more epochs
        scheduler.lr_lambdas[0].warmup, scheduler.lr_lambdas[0].total = warm, max(total_steps, 1)
        history = [h for h in state["history"] if h["epoch"] <= state["epoch"]]
        start_epoch = state["epoch"] + 1
        log(f"resuming after epoch {state['epoch']}")
    if start_epoch > opts.epochs:
        log(f"all {opts.epochs} epochs are done")
        return history

    model, optimizer = accelerator.prepare(model, optimizer)
    if state is not None:
        if state.get("scaler") is not None and accelerator.scaler is not None:
            accelerator.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / ARGS_NAME, dataclasses.asdict(opts))
    log(
        f"training {opts.arch} ({opts.variant}, dim {opts.dim}) on {accelerator.device} x{n_proc}, "
        f"mixed precision {accelerator.mixed_precision}: {len(train_ds)} examples/epoch, "
        f"{per_epoch} steps/epoch/process, {warm} warm-up steps"
    )

    pin = accelerator.device.type == "cuda"
    for epoch in range(start_epoch, opts.epochs + 1):
        t0 = time.time()
        train_ds.set_epoch(epoch)
        # not accelerator.prepare_data_loader: it would shard the share again, and pad the last
        # batches with repeated examples
        share = train_ds.process_share(accelerator.process_index, n_proc)
        loader = _loader(train_ds, opts.batch_size, opts.workers, pin, share)
        model.train()
        total, count, replaced = 0.0, 0, 0.0
        bar = tqdm(
            loader, desc=f"epoch {epoch}/{opts.epochs}", disable=not main or opts.quiet, leave=False, dynamic_ncols=True
        )
        for batch in bar:
            batch = {k: v.to(accelerator.device, non_blocking=pin) for k, v in batch.items()}
            with accelerator.autocast():
                out_ = model(batch["image"], batch["subject"], **_conditioning(config, batch, True))
            loss, _parts = batch_loss(out_, batch, float(opts.dim), use_sbl=opts.sbl)
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            optimizer.step()
            if not accelerator.optimizer_step_was_skipped:
                scheduler.step()
            n = batch["image"].shape[0]
            total += float(loss.detach()) * n
            count += n
            replaced += float(batch["replaced"].sum())
            bar.set_postfix(loss=f"{total / max(count, 1):.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        sums = accelerator.reduce(
            torch.tensor([total, count, replaced], dtype=torch.float64, device=accelerator.device), reduction="sum"
        )
        if sums[2] > 0 and main:
            print(
                f"gencrop train: warning: epoch {epoch}: {int(sums[2])} examples had an unreadable canvas and "
                "were replaced by others",
                file=sys.stderr,
                flush=True,
            )
        train_loss = float(sums[0] / max(sums[1], 1))
        train_seconds = time.time() - t0
        entry = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": None,
            "val_iou": None,
            "val_iou_full_view": None,
            "val_empty_frames": None,
            "lr": scheduler.get_last_lr()[0],
            "samples_per_s": float(sums[1]) / max(train_seconds, 1e-9),
        }
        if val_ds is not None:
            entry.update(evaluate(model, val_ds, opts, accelerator, config))
        entry["seconds"] = time.time() - t0
        history.append(entry)
        if main:
            _write_epoch(accelerator.unwrap_model(model), optimizer, scheduler, accelerator, history, out, opts)
        accelerator.wait_for_everyone()
        log(
            f"epoch {epoch}: train loss {train_loss:.4f}{_validation_summary(entry)}, {entry['samples_per_s']:.1f} samples/s"
        )
    best = _best(history)
    if best is not None:
        log(f"done: best epoch {best['epoch']} -> {out}")
    return history


@torch.no_grad()
def evaluate(model, dataset, opts: TrainOptions, accelerator, config) -> dict:
    """Validation loss and IoU of the predicted frame (clipped to the photo) with the true one."""
    model.eval()
    loader = accelerator.prepare_data_loader(
        _loader(dataset, opts.batch_size, opts.workers, accelerator.device.type == "cuda")
    )
    dim = float(opts.dim)
    rows = []
    for batch in loader:
        with accelerator.autocast():
            out = model(batch["image"], batch["subject"], **_conditioning(config, batch, False))
        crop, valid = batch["crop"] / dim, batch["valid"] / dim
        per_item = []
        for i in range(crop.shape[0]):  # per-example loss so the mean is exact over processes
            loss, _ = gencrop_loss(
                out.crop[i : i + 1],
                out.cell_crops[i : i + 1],
                crop[i : i + 1],
                valid[i : i + 1],
                batch["subject_mask_box"][i : i + 1] / dim,
                use_sbl=opts.sbl,
            )
            per_item.append(loss)
        pred = out.crop.float()
        pred = torch.cat([torch.maximum(pred[:, :2], valid[:, :2]), torch.minimum(pred[:, 2:], valid[:, 2:])], 1)
        empty = ((pred[:, 2] <= pred[:, 0]) | (pred[:, 3] <= pred[:, 1])).to(crop.dtype)
        rows.append(torch.stack([torch.stack(per_item), box_iou_xyxy(pred, crop), box_iou_xyxy(valid, crop), empty], 1))
    local = torch.cat(rows) if rows else torch.zeros((0, 4), device=accelerator.device)
    allrows = accelerator.gather_for_metrics(local)
    model.train()
    m = allrows.double().mean(0)
    return {
        "val_loss": float(m[0]),
        "val_iou": float(m[1]),
        "val_iou_full_view": float(m[2]),
        "val_empty_frames": float(m[3]),
    }


def _validation_summary(entry: dict) -> str:
    """The epoch line's validation part, saying what each figure is.

    An untrained network predicts frames of (nearly) no area -- each cell's box starts as a point at
    its anchor -- so the first epochs of a short run can score IoU 0: the line says so instead of
    leaving a bare 0.000 that reads like a bug.
    """
    if entry.get("val_loss") is None:
        return ""
    text = (
        f", val loss {entry['val_loss']:.4f}, val IoU {entry['val_iou']:.3f} of the predicted frames with the "
        f"true ones (the whole view scores {entry['val_iou_full_view']:.3f})"
    )
    empty = entry.get("val_empty_frames") or 0.0
    if empty > 0:
        text += f"; {empty:.0%} of the predicted frames are empty (no size learnt yet)"
    return text


def _write_epoch(model, optimizer, scheduler, accelerator, history: list[dict], out: Path, opts: TrainOptions) -> None:
    """Checkpoint, best model, loss.json, loss.png, then (last, atomically) the resume state."""
    epoch = history[-1]["epoch"]
    model.save_pretrained(out / f"epoch{epoch}")
    best = _best(history)
    if best is not None and best["epoch"] == epoch:
        model.save_pretrained(out)
    write_json(out / HISTORY_NAME, history)
    plot_history(history, out / "loss.png")
    state = {
        "epoch": epoch,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None,
        "rng": _rng_state(),
        "history": history,
    }
    with atomic_path(out / STATE_NAME) as tmp:
        torch.save(state, tmp)
    if opts.keep_epochs > 0:
        keep = {h["epoch"] for h in history[-opts.keep_epochs :]}
        for h in history:
            d = out / f"epoch{h['epoch']}"
            if h["epoch"] not in keep and d.is_dir():
                shutil.rmtree(d, ignore_errors=True)
