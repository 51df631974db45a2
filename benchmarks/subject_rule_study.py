"""Which found subjects should the crop keep? The study behind gencrop.subject_rule.FOUND_SUBJECT_RULE.

For every photo the cropper finds the subject itself (as `gencrop crop photo.jpg` does), with each
finder asked for, and the network's crop is computed once; then each candidate rule decides whether
that found subject is kept (the crop drawn toward it by the model's subject_pull and grown to contain
it, as a given subject is) or only fed to the network. Photos are split by what the detector calls
their subject: a person, or anything else. Printed per finder and kind of photo: mean IoU and BDE
against the expert crop, and the fraction of crops that cut the found person's box by more than 10%
of its area.

Photos: ``--split val`` (default) is the validation part of FCDB's official *training* split, the
120 photos the bundled model was chosen on (`gencrop data from-crops` with its default seeded 10%);
``--split test`` is FCDB's official test split, for reporting once a rule is chosen.

    python benchmarks/subject_rule_study.py [--split val|test] [--finders auto saliency]
        [--data-root $GENCROP_SHARED/data] [--model DIR] [--save runs.json | --load runs.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gencrop import Cropper
from gencrop.engine.from_crops import read_crop_annotations, split_ids
from gencrop.geometry import Box, clamp_prediction, score_against_ground_truths, summarize
from gencrop.io import write_json
from gencrop.shapes import Shape, fit_shape
from gencrop.subject_rule import FOUND_SUBJECT_RULE, SubjectRule

PERSON = "person"
DETECTOR = "detector"  # the finder whose person class tells the two kinds of photo apart
PERSON_CLASSES = frozenset({"person", "face"})
CUT_FRACTION = 0.1  # a crop "cuts" the person when it leaves out more than this of the person's box
VAL_FRACTION, VAL_SEED = 0.1, 0  # `gencrop data from-crops` defaults: the bundled model's validation photos


def photos_of(data_root: Path, split: str) -> list[tuple[str, Path, Box]]:
    """(name, path, expert crop) of the split's photos that are present."""
    fcdb = data_root / "fcdb"
    if split == "test":
        crops, _ = read_crop_annotations(fcdb / "cropping_testing_set.json")
        names = list(crops)
    else:
        crops, _ = read_crop_annotations(fcdb / "cropping_training_set.json")
        stems = {n: Path(n).stem for n in crops}
        splits = split_ids(sorted(stems.values()), "train", VAL_FRACTION, VAL_SEED)
        names = [n for n in crops if splits[stems[n]] == "val"]
    return [(n, fcdb / "images" / n, crops[n]) for n in sorted(names) if (fcdb / "images" / n).is_file()]


def make_finder(name: str):
    """A subject finder by name, as ``--subject-finder`` names them (``detector``: the most prominent COCO
    detection, else the salient region; ``saliency``; and whatever else gencrop ships)."""
    try:
        from gencrop.subjects import get_finder
    except ImportError:  # before gencrop.subjects: the detector-first finder and saliency alone
        from gencrop.subject import SubjectFinder

        finders = {"detector": SubjectFinder, "saliency": lambda: SubjectFinder(detector=None)}
        if name not in finders:
            raise SystemExit(f"unknown finder {name!r}; choose from {', '.join(finders)}") from None
        return finders[name]()
    if "@" in name or "!" in name:  # NAME@SIZE: a finder at another input size (bench_subject.py's specs)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_subject import make_finder as finder_from_spec

        return finder_from_spec(name)
    try:
        return get_finder(name)
    except ValueError as e:
        raise SystemExit(str(e)) from None


def crop_records(cropper: Cropper, finder, photos, records: list[dict], checkpoint=None) -> list[dict]:
    """Per photo: the found subject and the crops with it not kept, kept (pulled + contained) and contained only.

    ``records`` already made are kept (a resumed run); ``checkpoint()`` is called every 10 photos."""
    cropper = Cropper(cropper.network, subject_finder=finder.find)
    done = {r["name"] for r in records}
    todo = [p for p in photos if p[0] not in done]
    for k, (name, path, gt) in enumerate(tqdm(todo, desc="photos", unit="photo", file=sys.stderr)):
        if checkpoint is not None and k and k % 10 == 0:
            checkpoint()
        try:
            prepared = cropper.prepare(path)
        except Exception as e:  # noqa: BLE001 - a finder that fails on a photo is a result too: counted, not fatal
            print(f"{name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", file=sys.stderr)
            records.append({"name": name, "error": f"{type(e).__name__}: {e}"})
            continue
        free = cropper.crop(prepared, keep_subject=False)
        kept = cropper.crop(prepared, keep_subject=True)
        W, H = free.size
        contained = fit_shape(free.raw_box.clamp(W, H), Shape(), W, H, prepared.subject)
        records.append(
            {
                "name": name,
                "size": [W, H],
                "gt": list(gt.xywh),
                "source": prepared.source,
                "cls": prepared.subject_class,
                "score": prepared.subject_score,
                "subject": list(prepared.subject.xywh),
                "free": list(free.box.xywh),
                "kept": list(kept.box.xywh),
                "contained": list(contained.xywh),
            }
        )
    return records


def score(box: Box, gt: Box, W: int, H: int) -> tuple[float, float]:
    clamped = clamp_prediction(box, Box(0, 0, W, H))
    iou, disp, _ = score_against_ground_truths(clamped, [gt], W, H)
    return iou, disp


def cuts(crop: Box, person: Box) -> bool:
    return person.area > 0 and 1 - crop.intersection(person) / person.area > CUT_FRACTION


def candidate_rules(thresholds: list[float]) -> list[SubjectRule]:
    rules = [SubjectRule(keep_found=False), SubjectRule()]
    rules += [SubjectRule(min_score=t) for t in thresholds]
    rules += [SubjectRule(sources={"detection"}, min_score=t) for t in [0.0, *thresholds]]
    rules += [SubjectRule(classes=PERSON_CLASSES)]
    rules += [SubjectRule(classes=PERSON_CLASSES, min_score=t) for t in thresholds]
    return rules


def table(records: list[dict], persons: dict[str, Box | None], rules, how: str) -> None:
    """One block per kind of photo: every rule's IoU, BDE, kept count and person-cut fraction."""
    kinds = {
        "person found": [r for r in records if persons.get(r["name"]) is not None],
        "no person": [r for r in records if r["name"] in persons and persons[r["name"]] is None],
        "all": records,
    }
    for kind, rows in kinds.items():
        if not rows:
            continue
        print(f"  {kind} ({len(rows)} photos)")
        print(f"    {'rule':<52} {'kept':>5} {'IoU':>7} {'BDE':>7} {'cut>10%':>8}")
        for rule in rules:
            ious, disps, cut = [], [], []
            n_kept = 0
            for r in rows:
                W, H = r["size"]
                keep = rule.keeps(r["source"], r["cls"], r["score"])
                n_kept += keep
                box = Box.from_xywh(r[how if keep else "free"])
                iou, disp = score(box, Box.from_xywh(r["gt"]), W, H)
                ious.append(iou)
                disps.append(disp)
                person = persons.get(r["name"])
                if person is not None:
                    cut.append(cuts(box, person))
            s = summarize(ious, disps)
            cut_text = f"{np.mean(cut):>8.3f}" if cut else f"{'-':>8}"
            mark = " *" if rule == FOUND_SUBJECT_RULE else ""
            print(
                f"    {rule.describe() + mark:<52} {n_kept:>5} {s['mean_iou']:>7.4f} {s['mean_bde']:>7.4f} {cut_text}"
            )


def load_runs(path: Path) -> dict:
    runs = json.loads(path.read_text())
    if "auto" in runs["finders"]:  # files written when the detector-first finder was the default ("auto")
        runs["finders"].setdefault(DETECTOR, runs["finders"].pop("auto"))
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_root = Path(os.environ.get("GENCROP_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"
    ap.add_argument("--data-root", type=Path, default=default_root, help="folder holding fcdb/")
    ap.add_argument("--split", choices=("val", "test"), default="val")
    ap.add_argument("--finders", nargs="+", default=["detector", "saliency"])
    ap.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8, 0.9])
    ap.add_argument("--limit", type=int, default=None, help="only the first N photos (a quick look)")
    ap.add_argument("--save", type=Path, help="write the per-photo crops here (JSON) for --load; resumes from it")
    ap.add_argument("--load", type=Path, help="tabulate crops saved by --save instead of cropping")
    ap.add_argument(
        "--persons-from",
        type=Path,
        help="a --save file of the same split whose detector records tell the kinds of photo apart "
        "(then the detector is run only when --finders names it)",
    )
    ap.add_argument(
        "--all-rules",
        action="store_true",
        help="on the test split too, every candidate rule (default there: today's and the shipped rule only)",
    )
    args = ap.parse_args()

    if args.load:
        runs = load_runs(args.load)
    else:
        photos = photos_of(args.data_root, args.split)[: args.limit]
        if not photos:
            raise SystemExit(f"no FCDB photos under {args.data_root}")
        cropper = Cropper.from_pretrained(args.model)
        # the detector decides which photos show a person, whatever finder is studied
        finders = ([] if args.persons_from else [DETECTOR]) + [f for f in args.finders if f != DETECTOR]
        finders += [DETECTOR] if args.persons_from and DETECTOR in args.finders else []
        runs = {"split": args.split, "finders": {}}
        if args.save and args.save.is_file():  # resume
            runs = load_runs(args.save)
            if runs["split"] != args.split:
                raise SystemExit(f"{args.save} holds the {runs['split']} split, not {args.split}")

        def checkpoint():
            if args.save:
                write_json(args.save, runs)

        for name in finders:
            print(f"finder {name}: {len(photos)} {args.split} photos", file=sys.stderr)
            records = runs["finders"].setdefault(name, [])
            crop_records(cropper, make_finder(name), photos, records, checkpoint)
            checkpoint()
    if args.persons_from:
        other = load_runs(args.persons_from)
        if other["split"] != runs["split"]:
            raise SystemExit(f"{args.persons_from} holds the {other['split']} split, not {runs['split']}")
        runs["finders"][DETECTOR] = other["finders"][DETECTOR]
    # every finder studied on the same photos (a run that stopped early has fewer); the detector's
    # verdict (person or not) may cover fewer: photos without it count in "all" only
    studied = [v for k, v in runs["finders"].items() if k in args.finders] or [runs["finders"][DETECTOR]]
    common = set.intersection(*({r["name"] for r in v} for v in studied))
    runs["finders"] = {k: [r for r in v if r["name"] in common] for k, v in runs["finders"].items()}
    for name, records in runs["finders"].items():
        failed = [r for r in records if "error" in r]
        if failed:
            print(f"finder {name}: failed on {len(failed)} photos (not scored for any finder): {failed[0]['error']}")
    failed_names = {r["name"] for records in runs["finders"].values() for r in records if "error" in r}
    runs["finders"] = {k: [r for r in v if r["name"] not in failed_names] for k, v in runs["finders"].items()}
    detected = runs["finders"][DETECTOR]
    persons = {r["name"]: Box.from_xywh(r["subject"]) if r["cls"] == PERSON else None for r in detected}
    rules = candidate_rules(args.thresholds)
    if runs["split"] == "test" and not args.all_rules:  # rules are chosen on validation photos, never here
        rules = [SubjectRule(keep_found=False)] + ([FOUND_SUBJECT_RULE] if FOUND_SUBJECT_RULE.keep_found else [])
    print(
        f"FCDB {runs['split']} photos: {len(common - failed_names)}; the detector's verdict on {len(persons)}: "
        f"{sum(p is not None for p in persons.values())} whose detected subject is a person; "
        f"* = the shipped rule ({FOUND_SUBJECT_RULE.describe()})"
    )
    for name, records in runs["finders"].items():
        if name not in args.finders:
            continue
        sources = sorted({r["source"] for r in records})
        for how, what in (("kept", "kept = drawn toward it and contained"), ("contained", "kept = contained only")):
            print(f"\nfinder {name} (subjects from {', '.join(sources)}); {what}")
            table(records, persons, rules, how)


if __name__ == "__main__":
    main()
