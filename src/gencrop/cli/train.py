"""`gencrop train` and `gencrop view-train`: train GenCrop on an outpainted dataset, and look at its examples."""

from __future__ import annotations

import argparse

from . import CommandError, require_path, user_error, writable


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except for on/off switches (``--no-bad-filter (default: True)`` reads backwards)."""

    def _get_help_string(self, action):
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            return action.help
        return super()._get_help_string(action)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train GenCrop on an outpainted dataset (resumable; multi-GPU with `accelerate launch`)",
        description="Train GenCrop on DATA (a <dataset>/outpaint folder; the split files train.json and "
        "val.json are read one folder up). Writes RUN_DIR/epoch{N}/ every epoch, the best epoch "
        "at RUN_DIR's top level (a model directory for --model), loss.json and loss.png. "
        "For several GPUs or machines: accelerate launch -m gencrop train ...",
        formatter_class=_DefaultsHelp,
    )
    p.add_argument("data", help="the dataset's outpaint folder (data/<name>/outpaint)")
    p.add_argument("-o", "--out", required=True, metavar="RUN_DIR", help="run directory")
    p.add_argument("--dim", type=int, default=256, help="network input size (multiple of 16)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size per process")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--max-epoch-len", type=int, default=None, metavar="N", help="at most N photos per epoch")
    p.add_argument("--max-val-len", type=int, default=None, metavar="N", help="at most N validation photos")
    p.add_argument("--arch", default="resnet50", help="timm backbone (e.g. tf_efficientnet_lite0, mobilenetv2_100)")
    p.add_argument(
        "--variant",
        choices=["gencrop", "gencrop-c"],
        default="gencrop",
        help="gencrop-c is conditioned on the requested crop shape (area fraction and aspect)",
    )
    p.add_argument("--use-subject", action="store_true", help="add the subject mask as a 4th input channel")
    p.add_argument(
        "--no-bad-filter",
        dest="bad_filter",
        action="store_false",
        help="also train on canvases listed in outpaint/bad.json",
    )
    p.add_argument(
        "--no-heuristic-filter",
        dest="heuristic_filter",
        action="store_false",
        help="keep canvases where the outpainter invented a competing subject",
    )
    p.add_argument("--no-sbl", dest="sbl", action="store_false", help="drop the subject boundary loss")
    p.add_argument(
        "--no-invert", dest="invert", action="store_false", help="never give portrait frames a landscape view"
    )
    p.add_argument("--no-augment", dest="augment", action="store_false", help="no colour/blur/warp/flip/subject jitter")
    p.add_argument(
        "--no-shuffle",
        dest="shuffle",
        action="store_false",
        help="keep the photos in the set's order every epoch (default: a new seeded order each epoch)",
    )
    p.add_argument(
        "--whole-view-prob",
        type=float,
        default=0.0,
        metavar="P",
        help="use the whole canvas as the training view with probability P (for real-context "
        "data such as `gencrop data from-crops`, which is judged on whole photos)",
    )
    p.add_argument(
        "--composite-prob",
        type=float,
        default=0.0,
        metavar="P",
        help="with probability P, lay the photo out with 1-3 other photos on one canvas; the given "
        "subject is all that tells which frame is the target (teaches the crop to follow it)",
    )
    p.add_argument(
        "--subject-weighting",
        choices=("original", "restricted"),
        default="original",
        help="how cell weights use the subject: the research code's softmax(score x cell mask), "
        "or a softmax restricted to the subject's cells (needed for the crop to follow it)",
    )
    p.add_argument(
        "--positional-dropout",
        type=float,
        default=0.1,
        metavar="P",
        help="dropout on the cell tokens once their positions are added (the original code's 0.1; "
        "0 for networks built before it existed)",
    )
    p.add_argument(
        "--mask-channel-init",
        choices=("timm", "zeros"),
        default="timm",
        help="with --use-subject and ImageNet weights: start the mask channel as timm's in_chans=4 "
        "adapts the first convolution (the original code's way), or at zero weight",
    )
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=500, help="warm-up steps (shortened for short runs)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="data loader processes per training process (default: up to 4, no more than the CPUs available)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--pretrained",
        default="auto",
        metavar="auto|none|PATH",
        help="backbone weights: auto = ImageNet (offline for tf_efficientnet_lite0)",
    )
    p.add_argument(
        "--init",
        default=None,
        metavar="MODEL",
        help="fine-tune: start from a trained GenCrop model (run directory, hub id, or 'default' "
        "for the bundled one) with the same --arch/--use-subject/--variant; --dim may differ",
    )
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR after its last complete epoch")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")
    p.add_argument(
        "--keep-epochs",
        type=int,
        default=0,
        metavar="K",
        help="keep only the last K epoch checkpoints (0 = all; the best is always at the top level)",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=run_train)

    v = subparsers.add_parser(
        "view-train",
        help="draw a batch of training examples as the loop sees them",
        description="Draw training views of DATA (a <dataset>/outpaint folder) with the true frame (green), "
        "the subject box given to the model (red), the subject mask (tinted) and its bounds "
        "(yellow), and where the target's photo lies (blue; part of the canvas for composites).",
    )
    v.add_argument("data", help="the dataset's outpaint folder")
    v.add_argument("--out", required=True, help="PNG contact sheet to write")
    v.add_argument("--split", default="train")
    v.add_argument("-n", "--num", type=int, default=16, help="number of examples")
    v.add_argument("--dim", type=int, default=256)
    v.add_argument("--epoch", type=int, default=1, help="which epoch's draws to show")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--no-augment", dest="augment", action="store_false")
    v.add_argument("--no-invert", dest="invert", action="store_false")
    v.add_argument("--no-bad-filter", dest="bad_filter", action="store_false")
    v.add_argument("--no-heuristic-filter", dest="heuristic_filter", action="store_false")
    v.add_argument(
        "--composite-prob",
        type=float,
        default=0.0,
        metavar="P",
        help="draw composite canvases this often, as `gencrop train --composite-prob`",
    )
    v.set_defaults(func=run_view_train)


def run_train(args) -> int:
    require_path(args.data)
    from ..training.loop import TrainOptions, train

    given = {k: getattr(args, k) for k in TrainOptions.__dataclass_fields__ if getattr(args, k, None) is not None}
    opts = TrainOptions(**given)
    if opts.dim % 16:
        raise CommandError(f"--dim must be a multiple of 16; got {opts.dim}")
    if opts.batch_size < 1 or opts.epochs < 1:
        raise CommandError("--batch-size and --epochs must be positive")
    writable(opts.out)
    try:
        train(opts)
    except (ValueError, FileNotFoundError) as e:
        raise user_error(e) from None
    return 0


def run_view_train(args) -> int:
    writable(args.out, "file")
    require_path(args.data)
    try:
        n = draw_training_sheet(
            args.data,
            args.out,
            split=args.split,
            num=args.num,
            dim=args.dim,
            epoch=args.epoch,
            seed=args.seed,
            augment=args.augment,
            invert=args.invert,
            bad_filter=args.bad_filter,
            heuristic_filter=args.heuristic_filter,
            composite_prob=args.composite_prob,
        )
    except (ValueError, FileNotFoundError) as e:
        raise user_error(e) from None
    print(f"wrote {args.out} ({n} examples)")
    return 0


def draw_training_sheet(
    data: str,
    out: str,
    *,
    split: str = "train",
    num: int = 16,
    dim: int = 256,
    epoch: int = 1,
    seed: int = 0,
    augment: bool = True,
    invert: bool = True,
    bad_filter: bool = True,
    heuristic_filter: bool = True,
    composite_prob: float = 0.0,
) -> int:
    """Render ``num`` training items exactly as the loop builds them; returns how many were drawn."""
    import numpy as np
    from PIL import Image, ImageDraw

    from ..data.letterbox import IMAGENET_MEAN, IMAGENET_STD
    from ..data.outpaint import read_outpaint_set
    from ..data.training_set import TrainingSet
    from ..io import save_image

    data_set = read_outpaint_set(data, split, bad_filter=bad_filter, heuristic_filter=heuristic_filter)
    if data_set.num_photos == 0:
        raise ValueError(f"{data}: no usable {split} examples ({data_set.summary()})")
    ds = TrainingSet(
        data_set,
        dim,
        use_subject=True,
        augment=augment,
        invert=invert,
        seed=seed,
        composite_prob=composite_prob,
        shuffle=True,  # the loop's order
    )
    ds.set_epoch(epoch)
    n = min(num, len(ds))
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    sheet = Image.new("RGB", (cols * (dim + 4), rows * (dim + 4)), (40, 40, 40))
    mean = np.asarray(IMAGENET_MEAN, np.float32)[:, None, None]
    std = np.asarray(IMAGENET_STD, np.float32)[:, None, None]
    for i in range(n):
        item = ds[i]
        img = item["image"].numpy()
        rgb = np.clip((img[:3] * std + mean) * 255, 0, 255).transpose(1, 2, 0)
        rgb[(img[:3] == 0).all(axis=0)] = 0  # letterbox padding
        tint = img[3] > 0.5
        rgb[tint] = 0.6 * rgb[tint] + 0.4 * np.array([255, 0, 255])
        tile = Image.fromarray(rgb.astype(np.uint8))
        draw = ImageDraw.Draw(tile)
        for key, colour in (
            ("valid", (60, 120, 255)),
            ("subject_mask_box", (255, 220, 0)),
            ("subject", (255, 40, 40)),
            ("crop", (0, 255, 0)),
        ):
            draw.rectangle([float(v) for v in item[key]], outline=colour, width=2)
        sheet.paste(tile, ((i % cols) * (dim + 4) + 2, (i // cols) * (dim + 4) + 2))
    save_image(sheet, out)
    return n
