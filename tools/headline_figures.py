"""The documented figures of the bundled model: measure them, check them, write them into the docs.

``docs/figures.json`` is the one place the FCDB figures of README.md and
docs/model-card.md come from. In the docs, each figure is followed by a
marker naming its entry, e.g. ``0.688<!-- fig fcdb/gencrop/mean_iou -->``.

    python tools/headline_figures.py measure   # after a re-ship: score, write figures.json and the docs
    python tools/headline_figures.py check     # the bundled model still scores the figures (shared data)
    python tools/headline_figures.py docs      # rewrite the docs' figures from figures.json
    python tools/headline_figures.py check-docs   # the docs show exactly figures.json (no data needed)

``measure`` is the documented command (``gencrop eval --benchmark fcdb
--all-images --find-subjects``) done in steps: the subjects the finder picks
are kept in ``tests/data/fcdb_found_subjects.json.gz`` and reused (the finder
takes most of the time and does not change with the weights; ``--find-subjects``
redoes them), so ``check`` can replay exactly the documented inputs in a
minute. ``check`` fails when a figure moves by more than its noise (the
standard error of the mean over the photos, recorded beside it).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "docs" / "figures.json"
SUBJECTS = REPO / "tests" / "data" / "fcdb_found_subjects.json.gz"
DOCS = [REPO / "README.md", REPO / "docs" / "model-card.md"]
COMMAND = "gencrop eval --benchmark fcdb --data-root $DATA --all-images --find-subjects --baselines -o report/"
BASELINES = ("identity", "center:0.8", "center:0.9", "subject", "smartcrop")
MARKER = re.compile(r"(-?[0-9]+(?:\.[0-9]+)?)(\*\*)?<!-- fig ([\w:./-]+) -->")
DIGITS = 3  # as the docs print them


def shared_data() -> Path:
    return Path(os.environ.get("GENCROP_SHARED", REPO.parent / "shared")) / "data"


def model_digest() -> str:
    from gencrop.modeling.checkpoints import DEFAULT_MODEL_DIR

    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        h.update((DEFAULT_MODEL_DIR / name).read_bytes())
    return h.hexdigest()


# -- subjects -----------------------------------------------------------------------------
def find_subjects(bench) -> dict:
    from gencrop.data.benchmarks import attach_found_subjects

    attach_found_subjects(bench, progress=True)
    return {p.name: {"box": [round(v, 3) for v in p.subject.xywh], "source": p.mask_source,
                     "polygon": None if p.mask_polygon is None else [[round(float(x), 1), round(float(y), 1)]
                                                                     for x, y in p.mask_polygon]}
            for p in bench.photos}


def attach_stored_subjects(bench, stored: dict) -> None:
    import numpy as np

    from gencrop.geometry import Box

    missing = [p.name for p in bench.photos if p.name not in stored]
    if missing:
        raise SystemExit(f"{SUBJECTS.name} has no subject for {len(missing)} photos (e.g. {missing[0]}); "
                         "run `python tools/headline_figures.py measure --find-subjects`")
    for p in bench.photos:
        s = stored[p.name]
        p.subject = Box.from_xywh(s["box"])
        p.mask_polygon = None if s["polygon"] is None else np.asarray(s["polygon"], np.float32).reshape(-1, 2)
        p.mask_source = s["source"]


def load_fcdb_with_subjects(data_root: Path, refind: bool = False):
    from gencrop.data.benchmarks import load_benchmark
    from gencrop.io import atomic_open

    bench = load_benchmark("fcdb", data_root, all_images=True)
    if refind or not SUBJECTS.is_file():
        stored = find_subjects(bench)
        with atomic_open(SUBJECTS, "wb") as f:
            f.write(gzip.compress(json.dumps(stored, separators=(",", ":")).encode(), mtime=0))
    with gzip.open(SUBJECTS, "rt", encoding="utf-8") as f:
        attach_stored_subjects(bench, json.load(f))
    return bench


# -- scoring ----------------------------------------------------------------------------------
def _figures(run) -> dict:
    ok = run.ok
    n = len(ok)
    s = run.summary()

    def std_error(values):
        mean = sum(values) / n
        return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n) if n > 1 else float("nan")

    return {"mean_iou": round(s["mean_iou"], 4), "mean_bde": round(s["mean_bde"], 4),
            "frac_iou_ge_0.75": round(s["frac_iou_ge_0.75"], 4), "num_images": n,
            "mean_iou_std_error": round(std_error([r.iou for r in ok]), 4),
            "mean_bde_std_error": round(std_error([r.disp / 4 for r in ok]), 4)}


def score_bundled(bench) -> dict:
    from gencrop.evaluation import ModelMethod, evaluate
    from gencrop.inference import Cropper

    cropper = Cropper.from_pretrained(device="cpu")
    return _figures(evaluate(bench, ModelMethod(cropper, "gencrop (bundled)"), progress=True))


def score_baselines(bench) -> dict:
    from gencrop.evaluation import evaluate, make_baseline

    out = {}
    for spec in BASELINES:
        try:
            method = make_baseline(spec)
        except ValueError as e:  # smartcrop not installed
            print(f"skipped {spec}: {e}", file=sys.stderr)
            continue
        out[spec] = _figures(evaluate(bench, method, progress=method.needs_pixels))
    return out


# -- the docs -----------------------------------------------------------------------------------
def lookup(figures: dict, key: str) -> float:
    """``fcdb/gencrop/mean_iou`` -> figures["fcdb"]["methods"]["gencrop"]["mean_iou"]."""
    bench, method, name = key.split("/")
    return figures[bench]["methods"][method][name]


def render_docs(figures: dict, write: bool) -> list[str]:
    """Put the figures into the markers of the docs; returns the differences found (written when ``write``)."""
    problems = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")

        def fill(m: re.Match) -> str:
            want = f"{lookup(figures, m[3]):.{DIGITS}f}"
            if m[1] != want:
                problems.append(f"{doc.relative_to(REPO)}: {m[3]} shows {m[1]}, figures.json has {want}")
            return f"{want}{m[2] or ''}<!-- fig {m[3]} -->"

        new = MARKER.sub(fill, text)
        if write and new != text:
            from gencrop.io import atomic_open

            with atomic_open(doc, "w", encoding="utf-8") as f:
                f.write(new)
    return problems


def check_docs() -> int:
    figures = json.loads(FIGURES.read_text())
    problems = render_docs(figures, write=False)
    count = sum(len(MARKER.findall(d.read_text(encoding="utf-8"))) for d in DOCS)
    card = (REPO / "docs" / "model-card.md").read_text(encoding="utf-8")
    if figures["fcdb"]["command"] not in card:
        problems.append(f"docs/model-card.md does not show the command of its figures: {figures['fcdb']['command']}")
    for p in problems:
        print(p)
    print(f"{count} figures in the docs, {len(problems)} problems")
    return 1 if problems else 0


# -- commands ----------------------------------------------------------------------------------
def measure(args) -> int:
    bench = load_fcdb_with_subjects(args.data_root, refind=args.find_subjects)
    methods = {"gencrop": score_bundled(bench), **score_baselines(bench)}
    figures = {"written_by": "python tools/headline_figures.py measure",
               "fcdb": {"benchmark": "FCDB official test split, the photos available here, whole photo in, "
                                     "subject from the subject finder",
                        "command": COMMAND, "model_digest": model_digest(), "methods": methods}}
    from gencrop.io import write_json

    write_json(FIGURES, figures)
    render_docs(figures, write=True)
    for name, f in methods.items():
        print(f"{name:<12} IoU {f['mean_iou']:.4f} ± {f['mean_iou_std_error']:.4f}  "
              f"BDE {f['mean_bde']:.4f} ± {f['mean_bde_std_error']:.4f}  IoU>=0.75 {f['frac_iou_ge_0.75']:.4f}")
    print(f"wrote {FIGURES.relative_to(REPO)} and the figures of {', '.join(str(d.relative_to(REPO)) for d in DOCS)}")
    return 0


def check(args) -> int:
    figures = json.loads(FIGURES.read_text())["fcdb"]
    want = figures["methods"]["gencrop"]
    got = score_bundled(load_fcdb_with_subjects(args.data_root))
    bad = []
    for key in ("mean_iou", "mean_bde"):
        noise = want[f"{key}_std_error"]
        drift = abs(got[key] - want[key])
        print(f"{key}: documented {want[key]:.4f}, now {got[key]:.4f} (drift {drift:.4f}, noise {noise:.4f})")
        if drift > noise:
            bad.append(key)
    if got["num_images"] != want["num_images"]:
        bad.append("num_images")
        print(f"photos scored: documented {want['num_images']}, now {got['num_images']}")
    if figures["model_digest"] != model_digest():
        print("note: the bundled weights differ from the ones measured; run `python tools/headline_figures.py measure`")
    if bad:
        print(f"DRIFT in {', '.join(bad)}: the bundled model no longer scores what the docs say")
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("measure", "check"):
        p = sub.add_parser(name)
        p.add_argument("--data-root", type=Path, default=shared_data(),
                       help="folder holding fcdb/ (default: $GENCROP_SHARED/data)")
        if name == "measure":
            p.add_argument("--find-subjects", action="store_true",
                           help="run the subject finder again instead of reusing the stored subjects")
    sub.add_parser("docs")
    sub.add_parser("check-docs")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    if args.cmd == "check-docs":
        return check_docs()
    if args.cmd == "docs":
        render_docs(json.loads(FIGURES.read_text()), write=True)
        return 0
    if not (args.data_root / "fcdb").is_dir():
        print(f"no FCDB folder under {args.data_root} (set GENCROP_SHARED or --data-root)", file=sys.stderr)
        return 2
    return measure(args) if args.cmd == "measure" else check(args)


if __name__ == "__main__":
    sys.exit(main())
