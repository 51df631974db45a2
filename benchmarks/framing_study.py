"""How far should a given subject draw the crop? The framing study behind the bundled model's subject_pull.

On the validation photos of a `gencrop data from-crops` dataset (never the test split): the network's
crop is computed once per photo for its subject A (the training data's subject: the most prominent
object inside the expert crop) and for B = A mirrored left-right (kept where IoU(A, B) < 0.3); then the
framing rules of gencrop.shapes (pull toward the subject by LAMBDA, keep it inside) are applied for each
LAMBDA. Prints IoU with the expert crop, and follow / move over the mirror pairs; then the same IoU with
the subject the finder picks on the whole photo (should a found subject be kept?).

Run time: two network passes per photo and a subject search on each whole photo: about 12 minutes
for the FCDB training set's validation split on a 2-core CPU with the bundled model.

    python benchmarks/framing_study.py data/fcdb_train [--model DIR] [--lambdas 0 0.1 0.2 0.3 0.4 0.5]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from gencrop import Cropper
from gencrop.data.outpaint import parse_outpaint_name
from gencrop.evaluation.following import PAIR_MAX_IOU, mirrored
from gencrop.geometry import Box
from gencrop.io import load_image
from gencrop.shapes import keep_subject, pull_toward, round_box


def framed(box: Box, subject: Box, width: int, height: int, amount: float) -> Box:
    """The crop a user gets for a kept subject (free shape): pulled toward it, on whole pixels, containing it."""
    return keep_subject(
        round_box(pull_toward(box, subject, amount, width, height), width, height), subject, width, height
    )


def dist(p, q) -> float:
    return math.hypot(p[0] - q[0], p[1] - q[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", help="a `gencrop data from-crops` output folder (val.json + outpaint/images)")
    ap.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0, 0.1, 0.2, 0.3, 0.4, 0.5])
    args = ap.parse_args()
    root = Path(args.dataset)
    subjects = {e["id"]: e["subject_xywh"] for e in json.loads((root / f"{args.split}.json").read_text())}
    cropper = Cropper.from_pretrained(args.model)
    rows = []
    for f in sorted((root / "outpaint" / "images").iterdir()):
        pid, x, y, w, h = parse_outpaint_name(f.name)
        if subjects.get(pid) is None:
            continue
        sx, sy, sw, sh = subjects[pid]
        a = Box(x + sx * w, y + sy * h, sw * w, sh * h)
        ra = cropper.crop(f, subject=a, keep_subject=False)
        W, H = ra.size
        b = mirrored(a, W)
        rb = cropper.crop(f, subject=b, keep_subject=False) if a.iou(b) < PAIR_MAX_IOU else None
        img, size = load_image(f, min_side=512)
        from gencrop.subject import find_subject

        found = find_subject(img, size=size).box
        rf = cropper.crop(f, subject=found, keep_subject=False)
        rows.append(
            (
                Box(x, y, w, h),
                a,
                b,
                ra.raw_box.clamp(W, H),
                rb and rb.raw_box.clamp(W, H),
                found,
                rf.raw_box.clamp(W, H),
                W,
                H,
            )
        )
    print(
        f"{len(rows)} {args.split} photos; the network's crop alone: IoU "
        f"{np.mean([r[3].iou(r[0]) for r in rows]):.4f} (given subject), "
        f"{np.mean([r[6].iou(r[0]) for r in rows]):.4f} (found subject)"
    )
    print(f"{'lambda':>6} {'IoU given':>10} {'IoU found':>10} {'pairs':>6} {'follow':>7} {'move':>6}")
    for lam in args.lambdas:
        ious, ious_found, follow, move = [], [], [], []
        for frame, a, b, ca, cb, found, cf, W, H in rows:
            fa = framed(ca, a, W, H, lam)
            ious.append(fa.iou(frame))
            ious_found.append(framed(cf, found, W, H, lam).iou(frame))
            if cb is not None:
                fb = framed(cb, b, W, H, lam)
                follow.append(dist(fb.center, b.center) < dist(fa.center, b.center))
                move.append(1 - fa.iou(fb))
        print(
            f"{lam:>6g} {np.mean(ious):>10.4f} {np.mean(ious_found):>10.4f} {len(follow):>6} "
            f"{np.mean(follow):>7.3f} {np.mean(move):>6.3f}"
        )


if __name__ == "__main__":
    main()
