"""The documented figures of the bundled model: measure them, check them, write them into the docs.

``docs/figures.json`` is the one place the FCDB figures of README.md and
docs/model-card.md come from. In the docs, each figure is followed by a
marker naming its entry, e.g. ``0.688<!-- fig fcdb/gencrop/mean_iou -->``.

    python tools/headline_figures.py measure          # after a re-ship: run the documented command, record it
    python tools/headline_figures.py record REPORT/   # record a report of the documented command
    python tools/headline_figures.py check            # the bundled model still scores what was recorded
    python tools/headline_figures.py docs             # rewrite the docs' figures from figures.json
    python tools/headline_figures.py check-docs       # the docs show exactly figures.json (no data needed)

``measure`` runs the documented command (``gencrop eval --benchmark fcdb
--all-images --find-subjects --baselines``; the subject finder takes most of
its ten minutes) and ``record``s its report: the figures, and the subjects the
finder picked (``tests/data/fcdb_found_subjects.json.gz``). ``check`` replays
the bundled model on those subject boxes (no finder: about a minute on an idle
2-core CPU) and fails when its figures differ from the documented ones by more
than their noise (the standard error of the mean over the photos, recorded
beside them). The replay draws the subject masks from the boxes, where the
documented command used the finder's masks, so it agrees within noise, not
to the last digit.
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


# -- subjects ---------------------------------------------------------------------------------
def subjects_from_report(report: Path) -> dict:
    """``{photo: [x, y, w, h, source, class, score]}``: the subjects the documented command found (its
    per_image.csv); what found them decides whether the crop keeps them (gencrop.subject_rule)."""
    from gencrop.evaluation.report import read_rows

    return {
        r["name"]: [round(float(r[f"subject_{k}"]), 3) for k in "xywh"]
        + [r["subject_source"], r["subject_class"], round(float(r["subject_score"]), 4)]
        for r in read_rows(report)
        if r["status"] == "ok" and r["subject_x"] != ""
    }


def load_fcdb_with_stored_subjects(data_root: Path):
    """The FCDB test photos with the recorded found subjects (masks drawn from the boxes)."""
    from gencrop.data.benchmarks import load_benchmark
    from gencrop.geometry import Box
    from gencrop.subject import Subject

    with gzip.open(SUBJECTS, "rt", encoding="utf-8") as f:
        stored = json.load(f)
    bench = load_benchmark("fcdb", data_root, all_images=True)
    missing = [p.name for p in bench.photos if p.name not in stored]
    if missing:
        raise SystemExit(
            f"{SUBJECTS.name} has no subject for {len(missing)} photos (e.g. {missing[0]}); "
            "run `python tools/headline_figures.py measure`"
        )
    for p in bench.photos:
        entry = stored[p.name]
        p.subject = Box.from_xywh(entry[:4])
        if len(entry) == 7:  # what found it (older files hold the box only: not kept, as then)
            p.found = Subject(p.subject, None, source=entry[4], cls=entry[5], score=entry[6])
        else:
            p.found = Subject(p.subject, None, source="unknown", cls="unknown", score=0.0)
    return bench


# -- scoring ----------------------------------------------------------------------------------
def figures_of(ious: list[float], bdes: list[float]) -> dict:
    """Mean IoU, BDE (displacement / 4), fraction IoU >= 0.75, and the standard error of each mean."""
    from gencrop.geometry import summarize

    n = len(ious)
    s = summarize(ious, [4 * b for b in bdes])

    def std_error(values):
        mean = sum(values) / n
        return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n) if n > 1 else float("nan")

    return {
        "num_images": n,
        "mean_iou": round(s["mean_iou"], 6),
        "mean_bde": round(s["mean_bde"], 6),
        "frac_iou_ge_0.75": round(s["frac_iou_ge_0.75"], 6),
        "mean_iou_std_error": round(std_error(ious), 6),
        "mean_bde_std_error": round(std_error(bdes), 6),
    }


def figures_from_report(report: Path) -> dict:
    """Every method's figures in a report of the documented command (the model's and its baselines')."""
    from gencrop.evaluation.report import read_rows

    rows = [r for r in read_rows(report) if r["status"] == "ok"]
    methods = {"gencrop": figures_of([float(r["iou"]) for r in rows], [float(r["bde"]) for r in rows])}
    for col in rows[0]:
        if col.startswith("iou["):
            name = col[4:-1]
            vals = [r for r in rows if r[col] != ""]
            methods[name] = figures_of([float(r[col]) for r in vals], [float(r[f"disp[{name}]"]) / 4 for r in vals])
    return methods


def replay_bundled(data_root: Path, limit: int | None = None) -> dict:
    """The bundled model on the recorded subject boxes, scored with the published protocol."""
    from gencrop.evaluation import ModelMethod, evaluate
    from gencrop.inference import Cropper

    bench = load_fcdb_with_stored_subjects(data_root)
    # found subjects, treated as `gencrop eval --find-subjects` (and `gencrop crop`) treat them
    method = ModelMethod(Cropper.from_pretrained(device="cpu"), "gencrop (bundled)")
    run = evaluate(bench, method, limit=limit, progress=True)
    return figures_of([r.iou for r in run.ok], [r.disp / 4 for r in run.ok])


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

        def fill(m: re.Match, doc: Path = doc) -> str:
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
def record(report: Path) -> int:
    import gencrop
    from gencrop.io import atomic_open, write_json

    summary = json.loads((report / "summary.json").read_text())
    subjects = subjects_from_report(report)
    with atomic_open(SUBJECTS, "wb") as f:
        f.write(gzip.compress(json.dumps(subjects, separators=(",", ":"), sort_keys=True).encode(), mtime=0))
    methods = figures_from_report(report)
    figures = {
        "written_by": "python tools/headline_figures.py measure (or record REPORT)",
        "fcdb": {
            "benchmark": summary["description"],
            "command": COMMAND,
            "ran": summary.get("command", ""),
            "gencrop_version": gencrop.__version__,
            "model_digest": model_digest(),
            "methods": methods,
        },
    }
    write_json(FIGURES, figures)
    render_docs(figures, write=True)
    for name, f in methods.items():
        print(
            f"{name:<12} IoU {f['mean_iou']:.4f} ± {f['mean_iou_std_error']:.4f}  "
            f"BDE {f['mean_bde']:.4f} ± {f['mean_bde_std_error']:.4f}  IoU>=0.75 {f['frac_iou_ge_0.75']:.4f}"
        )
    print(f"wrote {FIGURES.relative_to(REPO)}, {SUBJECTS.relative_to(REPO)} and the figures of the docs")
    return 0


def measure(data_root: Path) -> int:
    import tempfile

    from gencrop.cli import main as gencrop_main

    with tempfile.TemporaryDirectory(prefix="gencrop-figures-") as tmp:
        argv = COMMAND.replace("$DATA", str(data_root)).replace("report/", tmp).split()[1:]
        code = gencrop_main(argv)
        if code != 0:
            return code
        return record(Path(tmp))


def check(data_root: Path) -> int:
    figures = json.loads(FIGURES.read_text())["fcdb"]
    want = figures["methods"]["gencrop"]
    got = replay_bundled(data_root)
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
        print("note: the bundled weights are not the ones measured; run `python tools/headline_figures.py measure`")
    if bad:
        print(
            f"DRIFT in {', '.join(bad)}: the documented figures are out of date; "
            "run `python tools/headline_figures.py measure`"
        )
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--data-root", type=Path, default=shared_data(), help="folder holding fcdb/ (default: $GENCROP_SHARED/data)"
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("measure")
    sub.add_parser("record").add_argument("report", type=Path, help="report folder of the documented command")
    sub.add_parser("check")
    sub.add_parser("docs")
    sub.add_parser("check-docs")
    args = ap.parse_args(argv)
    if args.cmd == "check-docs":
        return check_docs()
    if args.cmd == "docs":
        render_docs(json.loads(FIGURES.read_text()), write=True)
        return 0
    if args.cmd == "record":
        return record(args.report)
    if not (args.data_root / "fcdb").is_dir():
        print(f"no FCDB folder under {args.data_root} (set GENCROP_SHARED or --data-root)", file=sys.stderr)
        return 2
    return measure(args.data_root) if args.cmd == "measure" else check(args.data_root)


if __name__ == "__main__":
    sys.exit(main())
