"""Pin the bundled model's behaviour: write tests/data/bundled_model_expectations.json.

For the example photo, a landscape and a portrait cut of it, and a few
subjects each, the file records the network's crop in photo pixels
(``CropResult.raw_box``: before clamping or any subject keeping) and the cell
weights. ``tests/test_bundled_model_pinned.py`` recomputes them and fails when
they drift, or when the weights changed without this script being rerun.

Rerun it whenever the bundled weights change (a re-ship)::

    python tools/pin_bundled_model.py            # write the file
    python tools/pin_bundled_model.py --check    # compare only; exit 1 on drift

It also records how far each crop and heatmap move when the network is given
the subject as x, y, w, h instead of x1, y1, x2, y2, so the file itself shows
that the test's tolerance is tight enough to catch that mistake.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EXPECTATIONS = REPO / "tests" / "data" / "bundled_model_expectations.json"
EXAMPLE = REPO / "src" / "gencrop" / "assets" / "astronaut.jpg"

# (name, region of the example photo as x1, y1, x2, y2 or None for all of it, subjects as x, y, w, h)
CASES = [
    ("example", None, [(150, 30, 200, 300), (20, 300, 150, 200), (330, 60, 160, 250)]),
    ("landscape", (0, 96, 512, 416), [(300, 40, 150, 200), (30, 150, 120, 100)]),
    ("portrait", (100, 0, 400, 512), [(40, 250, 180, 150), (150, 20, 120, 160)]),
]
# What the test allows: float noise across CPUs is ~1e-3 px and ~1e-7 in a weight.
CROP_TOLERANCE_PX = 0.1
HEATMAP_TOLERANCE = 1e-4


def model_digest(model_dir: Path) -> str:
    """sha256 over the bundled config and weights: which model the expectations belong to."""
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        h.update((model_dir / name).read_bytes())
    return h.hexdigest()


def case_photo(region):
    """The photo of a case: the example, or a cut of it (an in-memory RGB image)."""
    from gencrop.io import load_image

    img, _ = load_image(EXAMPLE)
    return img if region is None else img.crop(tuple(region))


def _wrong_convention(cropper, photo, subject):
    """The crop when the network gets the subject as input-pixel x, y, w, h (the mistake to catch)."""
    import torch

    from gencrop.geometry import Box

    p = cropper.prepare(photo, subject)
    x = torch.from_numpy(p.array[None])
    s = torch.tensor([p.subject_input.xywh], dtype=torch.float32)
    with torch.inference_mode():
        out = cropper.model(x, s)
    raw = p.letterbox.to_photo(Box.from_xyxy(*(out.crop[0].numpy() * cropper.dim)))
    return raw, out.weights[0].numpy()


def compute() -> dict:
    from gencrop.inference import Cropper
    from gencrop.modeling.checkpoints import DEFAULT_MODEL_DIR

    cropper = Cropper.from_pretrained(device="cpu", runtime="torch")  # the ONNX runtime is checked against it
    cases = []
    for name, region, subjects in CASES:
        photo = case_photo(region)
        for subject in subjects:
            res = cropper.crop(photo, subject=subject)
            wrong_box, wrong_heat = _wrong_convention(cropper, photo, subject)
            cases.append(
                {
                    "photo": name,
                    "region": region,
                    "subject": list(subject),
                    "size": list(res.size),
                    "raw_box": [round(v, 4) for v in res.raw_box.xywh],
                    "heatmap": np.round(res.heatmap.astype(np.float64), 7).tolist(),
                    "xywh_mistake_moves_crop_px": round(
                        max(abs(a - b) for a, b in zip(res.raw_box.xywh, wrong_box.xywh)), 4
                    ),
                    "xywh_mistake_moves_heatmap": float(f"{np.abs(res.heatmap - wrong_heat).max():.3g}"),
                }
            )
    return {
        "model_digest": model_digest(DEFAULT_MODEL_DIR),
        "written_by": "python tools/pin_bundled_model.py",
        "crop_tolerance_px": CROP_TOLERANCE_PX,
        "heatmap_tolerance": HEATMAP_TOLERANCE,
        "cases": cases,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    got = compute()
    if args.check:
        want = json.loads(EXPECTATIONS.read_text())
        bad = want["model_digest"] != got["model_digest"]
        for w, g in zip(want["cases"], got["cases"]):
            d_box = max(abs(a - b) for a, b in zip(w["raw_box"], g["raw_box"]))
            d_heat = float(np.abs(np.asarray(w["heatmap"]) - np.asarray(g["heatmap"])).max())
            drift = d_box > CROP_TOLERANCE_PX or d_heat > HEATMAP_TOLERANCE
            bad |= drift
            print(
                f"{w['photo']:<10} subject {w['subject']}: crop {d_box:.4f} px, heatmap {d_heat:.2e}"
                + ("  DRIFT" if drift else "")
            )
        print("model digest", "matches" if want["model_digest"] == got["model_digest"] else "DIFFERS")
        return 1 if bad else 0
    from gencrop.io import write_json

    write_json(EXPECTATIONS, got, indent=1)
    for c in got["cases"]:
        print(
            f"{c['photo']:<10} subject {c['subject']}: raw crop {c['raw_box']}; the x,y,w,h mistake moves it "
            f"{c['xywh_mistake_moves_crop_px']} px and the heatmap {c['xywh_mistake_moves_heatmap']}"
        )
    print(f"wrote {EXPECTATIONS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
