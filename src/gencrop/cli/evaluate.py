"""`gencrop eval`, `gencrop sacd-links`, `gencrop unsplash ...`, `gencrop dataset ...`: measuring and data in place."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from . import CommandError, add_subject_finder_option, counted, user_error, writable


def register(sub: argparse._SubParsersAction) -> None:
    _register_eval(sub)
    p = sub.add_parser(
        "sacd-links",
        help="make SACD's images-sym/ folder (one link per example)",
        description="Link SACD/images-sym/<photo>_<k>.jpg to images/<photo>.jpg for every "
        "annotation, as `gencrop eval --benchmark sacd` reads it.",
    )
    p.add_argument("sacd_dir", metavar="SACD_DIR")
    p.set_defaults(func=run_sacd_links)
    _register_unsplash(sub)
    _register_dataset(sub)


# ----------------------------------------------------------------------------
# eval
# ----------------------------------------------------------------------------
def _register_eval(sub) -> None:
    from ..data.benchmarks import BENCHMARKS

    p = sub.add_parser(
        "eval",
        help="score a model or a baseline on a benchmark (IoU, BDE) and write a report",
        description="Score a GenCrop model (MODEL; default: the bundled one) or a baseline (--method) on a "
        "published benchmark, with the published protocol: predictions clamped to the photo, "
        "mean IoU, mean boundary displacement / 4 (BDE), fraction with IoU >= 0.75. Without "
        "--benchmark, the test split of a generated dataset (--dataset OUTPAINT_DIR) with fixed, "
        "seeded views. -o writes summary.json, per_image.csv and index.html.",
        epilog="examples:\n"
        "  gencrop eval runs/portrait --benchmark fcdb --data-root ~/benchmarks -o reports/fcdb\n"
        "  gencrop eval --method center:0.8 --benchmark gaicd --data-root ~/benchmarks\n"
        "  gencrop eval runs/portrait --benchmark unsplash --dataset data/portrait --images unsplash/images\n"
        "  gencrop eval --compare reports/fcdb reports/fcdb-epoch10",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help="model directory (ours or the original code's run folder); default: the bundled model",
    )
    p.add_argument(
        "--method", metavar="BASELINE", help="a baseline instead of a model: identity | center:0.8 | subject"
    )
    p.add_argument("--benchmark", "-b", choices=BENCHMARKS, help="benchmark (default: the test split of --dataset)")
    p.add_argument(
        "--data-root", metavar="ROOT", help="folder holding FCDB/, FLMS/, GAICD/, CPCDataset/, SACD/ as published"
    )
    p.add_argument(
        "--dataset",
        metavar="DIR",
        help="unsplash: the category folder with testeval_sha256.json.gz + test.json; "
        "no --benchmark: the outpainted folder (data/<name>/outpaint)",
    )
    p.add_argument("--images", metavar="DIR", help="unsplash: the folder of img<ID>.jpg")
    p.add_argument(
        "--all-images", action="store_true", help="every test photo, not only the human-centric ones (no subject boxes)"
    )
    p.add_argument("--epoch", type=int, help="epoch of an original-code run folder (default: best validation loss)")
    p.add_argument("-o", "--out-dir", metavar="REPORT_DIR", help="write the report here")
    p.add_argument(
        "--baselines",
        action="store_true",
        help="also score identity, center:0.8 and subject on the same photos (in the report)",
    )
    p.add_argument(
        "--find-subjects",
        action="store_true",
        help="photos without an annotated subject get the one the subject finder picks "
        "(the most prominent detection, else the salient region); used by the model and "
        "the subject baseline alike",
    )
    p.add_argument(
        "--subjects-in-crop",
        action="store_true",
        help="photos without an annotated subject get the most prominent object inside the expert's "
        "crop (how the training data defines the subject: a subject a user would give)",
    )
    p.add_argument(
        "--protocol",
        choices=("crop", "follow", "shapes"),
        default="crop",
        help="crop: IoU/BDE against the ground truth (default); shapes: the same, asking for a crop "
        "of the ground truth's aspect ratio; follow: does the crop follow the subject (crop "
        "with subject A, then B = A mirrored or another object; contain, follow, move)",
    )
    p.add_argument(
        "--allow-subject-cut",
        action="store_true",
        help="score the model's crop as it is, without keeping the subject inside it",
    )
    p.add_argument(
        "--segment",
        action="store_true",
        help="segment the photos to be scored that detect.json.gz / mask.npz do not cover yet",
    )
    p.add_argument(
        "--segment-backend",
        default="auto",
        choices=("auto", "ultralytics", "yolov7"),
        help="with --segment: as `gencrop segment --backend` (default auto: ultralytics when its weights are "
        "on this machine, else the offline yolov7)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the views of a generated test split")
    p.add_argument(
        "--no-bad-filter",
        dest="bad_filter",
        action="store_false",
        help="a generated test split: also score the canvases listed in outpaint/bad.json (as train --no-bad-filter)",
    )
    p.add_argument("--limit", type=int, help="only the first N photos (a quick look)")
    p.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    p.add_argument(
        "--runtime",
        choices=("auto", "onnx", "torch"),
        default="auto",
        help="what runs the model: onnx, torch, or auto (onnx when the model has an up-to-date "
        "model.onnx and no GPU is asked for)",
    )
    add_subject_finder_option(p)
    p.add_argument("--compare", nargs="+", metavar="RUN", help="print one table of these report folders and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_eval)


def _make_method(args):
    from ..evaluation.baselines import ModelMethod, make_baseline

    if args.method:
        if args.model:
            raise CommandError("give a MODEL or --method, not both")
        if args.epoch is not None:
            raise CommandError("--epoch applies to a model, not to a baseline")
        try:
            return make_baseline(args.method)
        except ValueError as e:
            raise CommandError(str(e)) from None
    from ..inference import Cropper

    try:
        cropper = Cropper.from_pretrained(
            args.model,
            epoch=args.epoch,
            device=args.device,
            runtime=args.runtime,
            subject_finder=args.subject_finder,
        )
    except (OSError, ValueError, KeyError, ImportError) as e:
        raise CommandError(f"cannot load model {args.model or '(bundled)'}: {e}") from None
    name = Path(args.model).name if args.model else "gencrop (bundled)"
    if args.epoch is not None:
        name += f" @ epoch {args.epoch}"
    if args.allow_subject_cut:
        name += " (subject may be cut)"
    # a found subject (--find-subjects) is kept as `gencrop crop` keeps it: by gencrop.subject_rule
    return ModelMethod(cropper, name, keep_subject=False if args.allow_subject_cut else None)


def _own_dataset(args, method) -> str | None:
    """The outpainted folder to test on: --dataset, else the one the model was trained on (if recorded)."""
    if args.dataset:
        return args.dataset
    cropper = getattr(method, "cropper", None)
    extra = cropper.network.info.extra if cropper is not None else {}
    return (extra.get("training") or {}).get("data")


def segment_scored_photos(bench, backend: str, quiet: bool) -> None:
    """``--segment``: add the photos to be scored that no ``detect.json.gz`` covers yet (person class)."""
    from ..data.benchmarks import unsegmented
    from ..engine.segment import choose_backend, segment_folder

    for (image_dir, folder), stems in unsegmented(bench).items():
        try:
            backend, why = choose_backend(backend)
            if not quiet:
                print(f"gencrop eval: --segment: {backend} backend ({why})", file=sys.stderr)
            summary = segment_folder(image_dir, folder, backend=backend, stems=stems, quiet=quiet)
        except ImportError as e:  # a backend whose packages are missing: one line, with the install command
            other = "" if backend == "yolov7" else " (or --segment-backend yolov7, which works offline)"
            raise CommandError(f"--segment: {e}{other}") from None
        except OSError as e:  # e.g. weights that could not be downloaded
            raise CommandError(f"--segment: {backend} segmentation failed: {e}") from None
        print(f"gencrop eval: segmented {image_dir}: {summary.text()}", file=sys.stderr)


def _subject_masks(bench, method, args) -> str:
    """Attach detection masks; a missing segmentation is an error only for a method that uses masks."""
    from ..data.benchmarks import attach_detection_masks, segment_command, unsegmented

    if not bench.detection_dirs or not bench.has_subjects:
        sources = {p.mask_source for p in bench.photos if p.subject is not None}
        return ", ".join(sorted(sources)) or "none"
    if args.segment:
        segment_scored_photos(bench, args.segment_backend, args.quiet)
    matched, unmatched, missing = attach_detection_masks(bench)
    not_covered = sum(len(stems) for stems in unsegmented(bench).values())
    if missing or not_covered:
        what = (
            ", ".join(str(f) for f in missing) + " missing"
            if missing
            else f"{counted(not_covered, 'photo')} not in detect.json.gz"
        )
        hint = f"make them with `{segment_command(bench)}` (or add --segment --segment-backend yolov7)"
        if method.uses_mask:
            raise CommandError(f"subject masks needed by this model: {what}; {hint}")
        print(
            f"gencrop eval: note: no subject masks ({what}; {hint}); {method.name} does not use them", file=sys.stderr
        )
        return "boxes (no segmentation)" if missing else f"detections ({matched} matched, {unmatched} boxes)"
    return f"detections ({matched} matched, {unmatched} boxes)"


def run_eval(args) -> int:
    from ..data.benchmarks import BenchmarkError, load_benchmark
    from ..evaluation.baselines import BASELINES, SHAPE_BASELINES, make_baseline
    from ..evaluation.report import ThumbnailWriter, compare_runs, format_summary, write_report
    from ..evaluation.runner import evaluate

    if args.compare:
        try:
            print(compare_runs(args.compare))
        except (OSError, ValueError, KeyError) as e:
            raise CommandError(str(e)) from None
        return 0
    if args.limit is not None and args.limit <= 0:
        raise CommandError("--limit must be positive")
    if args.find_subjects and args.subjects_in_crop:
        raise CommandError("give --find-subjects or --subjects-in-crop, not both")
    writable(args.out_dir)

    def benchmark(dataset):
        try:
            return load_benchmark(
                args.benchmark,
                args.data_root,
                all_images=args.all_images,
                dataset=dataset,
                images=args.images,
                seed=args.seed,
                bad_filter=args.bad_filter,
            )
        except BenchmarkError as e:
            raise CommandError(str(e)) from None

    if args.method:  # a baseline costs nothing to make, and its arguments are checked first
        method = _make_method(args)
        bench = benchmark(args.dataset)
    elif args.benchmark or args.dataset:  # the photos do not depend on the model: check them before loading it
        bench = benchmark(args.dataset)
        method = _make_method(args)
    else:  # the test split of the data the model was trained on
        method = _make_method(args)
        bench = benchmark(_own_dataset(args, method))
    annotated = len(bench.photos) + len(bench.missing)
    if args.limit is not None:  # only the photos that will be scored are segmented, given subjects, ...
        bench.photos = bench.photos[: args.limit]
    masks = _subject_masks(bench, method, args)
    if args.find_subjects or args.subjects_in_crop or args.protocol == "follow":
        from ..data.benchmarks import attach_found_subjects
        from ..subjects import SubjectNotFound, get_finder

        detector = get_finder("detector").detector if args.protocol == "follow" else None
        finder = get_finder(args.subject_finder)
        try:
            n = 0
            if args.find_subjects or args.subjects_in_crop:
                n = attach_found_subjects(
                    bench,
                    finder.find,
                    progress=not args.quiet,
                    detector=detector,
                    inside_ground_truth=args.subjects_in_crop,
                )
            elif detector is not None:  # annotated subjects: the detector still finds the second objects
                for photo in bench.photos:
                    from ..io import load_image

                    img, size = load_image(photo.path, min_side=512)
                    photo.detections = detector.seg([img], sizes=[size])[0]
        except SubjectNotFound as e:
            raise CommandError(str(e)) from None
        how = "inside the expert crop" if args.subjects_in_crop else "by the subject finder"
        masks = f"{masks}; {n} found {how}" if n else masks
    if not bench.photos:
        shown = ", ".join(bench.missing[:3])
        raise CommandError(
            f"{bench.description}: no photos to score in {bench.folder}"
            + (f" ({len(bench.missing)} annotated photos missing, e.g. {shown})" if bench.missing else "")
            + (
                "; --no-bad-filter also scores the canvases bad.json rejects"
                if bench.name == "own" and args.bad_filter
                else ""
            )
        )
    if bench.missing:
        print(
            f"gencrop eval: warning: {len(bench.missing)} of {annotated} annotated "
            f"photos are missing from {bench.folder} (e.g. {bench.missing[0]}); they are not scored",
            file=sys.stderr,
        )
    for line in bench.warnings:
        print(f"gencrop eval: warning: {line}", file=sys.stderr)
    if bench.skipped:
        print(f"gencrop eval: warning: {len(bench.skipped)} annotated photos are not scored:", file=sys.stderr)
        for name, why in bench.skipped[:10]:
            print(f"  skipped {name}: {why}", file=sys.stderr)
        if len(bench.skipped) > 10:
            print(f"  ... and {len(bench.skipped) - 10} more", file=sys.stderr)

    progress = not args.quiet
    if args.protocol == "follow":
        return _run_following(bench, method, args)
    shapes = args.protocol == "shapes"
    writer = ThumbnailWriter(args.out_dir) if args.out_dir else None
    run = evaluate(
        bench,
        method,
        limit=args.limit,
        progress=progress,
        on_photo=writer,
        need_pixels=writer is not None,
        ground_truth_aspect=shapes,
    )
    run.info["subject_masks"] = masks
    if bench.skipped:
        run.info["not_scored"] = [f"{name}: {why}" for name, why in bench.skipped]
    run.info["heatmaps"] = bool(writer and writer.heatmaps)
    if shapes:
        run.info["protocol"] = "shapes: each method asked for a crop of the ground truth's aspect ratio"
    baselines = {}
    if args.baselines:
        for spec in SHAPE_BASELINES if shapes else BASELINES:
            b = make_baseline(spec)
            if b.name != method.name:
                baselines[b.name] = evaluate(bench, b, limit=args.limit, progress=False, ground_truth_aspect=shapes)

    if args.out_dir:
        command = "gencrop " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
        summary = write_report(args.out_dir, run, baselines, command=command)
    else:
        from ..evaluation.report import FRAC_KEY

        summary = {
            "benchmark": run.benchmark,
            "description": run.description,
            "method": run.method,
            **run.summary(),
            "num_failed": len(run.failed),
            "num_missing": len(run.missing),
        }
        summary.setdefault(FRAC_KEY, float("nan"))
    print(format_summary(summary))
    for name, b in baselines.items():
        s = b.summary()
        print(f"  {name:<12} IoU {s['mean_iou']:.4f}  BDE {s['mean_bde']:.4f}")
    for r in run.failed[:5]:
        print(f"gencrop eval: failed: {r.name}: {r.error}", file=sys.stderr)
    if args.out_dir:
        print(f"report: {Path(args.out_dir) / 'index.html'}")
    return 1 if run.failed and not run.ok else 0


def _run_following(bench, method, args) -> int:
    """The subject-following protocol for the method (and the subject/centre baselines with --baselines)."""
    from ..evaluation.baselines import make_baseline
    from ..evaluation.following import evaluate_following
    from ..io import write_json

    methods = [method] + ([make_baseline(s) for s in ("subject", "center:0.8")] if args.baselines else [])
    runs = [evaluate_following(bench, m, limit=args.limit, progress=not args.quiet) for m in methods]
    print(f"{bench.description}: subject following ({runs[0].photos} photos with a subject)")
    print(f"  {'method':<34} {'pairs':>5} {'contain':>8} {'follow':>7} {'move':>6}   mirror pairs / object pairs")
    for r in runs:
        t = r.table()
        parts = " / ".join(f"{t[k]['pairs']}: {t[k]['follow']:.2f} {t[k]['move']:.2f}" for k in ("mirror", "object"))
        a = t["all"]
        print(f"  {r.method:<34} {a['pairs']:>5} {a['contain']:>8.3f} {a['follow']:>7.3f} {a['move']:>6.3f}   {parts}")
        for name, err in r.failed[:5]:
            print(f"gencrop eval: failed: {name}: {err}", file=sys.stderr)
    if args.out_dir:
        out = Path(args.out_dir) / "following.json"
        write_json(
            out,
            {
                "benchmark": bench.description,
                "methods": {
                    r.method: {
                        **r.table(),
                        "photos": r.photos,
                        "failed": len(r.failed),
                        "per_pair": [
                            {
                                "photo": p.name,
                                "kind": p.kind,
                                "a": list(p.a.xywh),
                                "b": list(p.b.xywh),
                                "crop_a": list(p.crop_a.xywh),
                                "crop_b": list(p.crop_b.xywh),
                                "contain": p.contain,
                                "follow": p.follow,
                                "move": p.move,
                            }
                            for p in r.pairs
                        ],
                    }
                    for r in runs
                },
            },
        )
        print(f"written: {out}")
    return 0 if runs[0].pairs else 1


# ----------------------------------------------------------------------------
# sacd-links
# ----------------------------------------------------------------------------
def run_sacd_links(args) -> int:
    import os

    folder = Path(args.sacd_dir)
    annot_dir, img_dir, out_dir = folder / "annotations", folder / "images", folder / "images-sym"
    if not annot_dir.is_dir():
        raise CommandError(f"{annot_dir}: no such folder (is {folder} the unzipped SACD?)")
    writable(out_dir)
    out_dir.mkdir(exist_ok=True)
    made = existing = 0
    missing = []
    for annot in sorted(annot_dir.iterdir()):
        if annot.suffix != ".json":
            continue
        photo = annot.stem.rsplit("_", 1)[0] + ".jpg"
        link = out_dir / (annot.stem + ".jpg")
        if not (img_dir / photo).is_file():
            missing.append(photo)
            continue
        if link.is_symlink() or link.exists():
            existing += 1
            continue
        os.symlink(os.path.relpath(img_dir / photo, out_dir), link)
        made += 1
    print(f"gencrop sacd-links: {made} links made, {existing} already there, {len(missing)} photos missing")
    for m in missing[:10]:
        print(f"  missing: {img_dir / m}", file=sys.stderr)
    return 1 if missing else 0


# ----------------------------------------------------------------------------
# unsplash
# ----------------------------------------------------------------------------
def _register_unsplash(sub) -> None:
    p = sub.add_parser(
        "unsplash",
        help="the paper's Unsplash splits: map ids, download photos",
        description="Turn the published SHA-256 split files into Unsplash photo ids "
        "(`prepare`), then download those photos (`download`). Needs the Unsplash "
        "dataset's photos.tsv* tables (https://unsplash.com/data).",
    )
    us = p.add_subparsers(dest="unsplash_command", metavar="SUBCOMMAND")
    q = us.add_parser(
        "prepare",
        help="map the SHA-256 ids of the splits to photo ids",
        description='Write OUT/<category>/{images,train,val,test}.json (entries gain "id") and '
        "copy testeval_sha256.json.gz beside test.json; report missing ids per split.",
    )
    q.add_argument("hash_dir", metavar="HASH_DIR", help="folder of <category>/*_sha256.json (the paper's data/)")
    q.add_argument("unsplash_dir", metavar="UNSPLASH_DATASET_DIR", help="the extracted Unsplash dataset (photos.tsv*)")
    q.add_argument("-o", "--out-dir", default="data", help="where to write (default: ./data)")
    q.add_argument("--categories", nargs="+", metavar="NAME", help="only these categories")
    q.set_defaults(func=run_unsplash_prepare)
    d = us.add_parser(
        "download",
        help="download the photos the splits name (img<ID>.jpg)",
        description="Download, in parallel and resumably, the photos listed in DATA/*/images.json "
        "(or every photo with --all) at shortest side 1024 px; RGBA images are rejected.",
    )
    d.add_argument("unsplash_dir", metavar="UNSPLASH_DATASET_DIR")
    d.add_argument("img_dir", metavar="IMG_DIR")
    d.add_argument("--all", action="store_true", help="every photo of the dataset, not only the splits'")
    d.add_argument("--data", default="data", help="the folder `unsplash prepare` wrote (default: ./data)")
    d.add_argument("--workers", type=int, default=16)
    d.add_argument("--retries", type=int, default=3)
    d.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    d.add_argument("-q", "--quiet", action="store_true")
    d.set_defaults(func=run_unsplash_download)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def run_unsplash_prepare(args) -> int:
    from ..data.unsplash import CATEGORIES, prepare

    cats = tuple(args.categories) if args.categories else CATEGORIES
    unknown = [c for c in cats if c not in CATEGORIES]
    if unknown:
        raise CommandError(f"unknown categories {unknown}; choose from {', '.join(CATEGORIES)}")
    writable(args.out_dir)
    try:
        report = prepare(args.hash_dir, args.unsplash_dir, args.out_dir, cats)
    except (FileNotFoundError, ValueError) as e:
        raise user_error(e) from None
    any_missing = False
    for cat, parts in report.items():
        if "error" in parts:
            print(f"{cat}: skipped ({parts['error']})")
            continue
        cells = []
        for key in ("images", "train", "val", "test"):
            r = parts.get(key)
            if r is None or r.get("absent"):
                cells.append(f"{key} -")
                continue
            cells.append(f"{key} {r['found']}/{r['total']}" + (f" ({r['missing']} missing)" if r["missing"] else ""))
            any_missing |= bool(r["missing"])
        print(f"{cat}: " + ", ".join(cells))
    print(f"written to {args.out_dir}")
    if any_missing:
        print(
            "note: missing ids are photos not in the given photos.tsv* tables (a different dataset version, "
            "or the Lite dataset)",
            file=sys.stderr,
        )
    return 0


def run_unsplash_download(args) -> int:
    from ..data.unsplash import download, wanted_ids

    writable(args.img_dir)
    ids = None
    if not args.all:
        ids = wanted_ids(args.data)
        if not ids:
            raise CommandError(f"no {args.data}/*/images.json: run `gencrop unsplash prepare` first (or use --all)")
    try:
        summary = download(
            args.unsplash_dir,
            args.img_dir,
            ids=ids,
            workers=args.workers,
            retries=args.retries,
            timeout=args.timeout,
            progress=not args.quiet,
        )
    except (FileNotFoundError, ValueError) as e:
        raise user_error(e) from None
    print(summary.line() + f", {summary.bytes / 1e6:.1f} MB")
    for pid, reason in list(summary.failed.items())[:10]:
        print(f"  failed: {pid}: {reason}", file=sys.stderr)
    if len(summary.failed) > 10:
        print(f"  ... and {len(summary.failed) - 10} more", file=sys.stderr)
    return 1 if summary.failed else 0


# ----------------------------------------------------------------------------
# dataset
# ----------------------------------------------------------------------------
def _register_dataset(sub) -> None:
    p = sub.add_parser(
        "dataset",
        help="your own dataset: check split files, link photos as img<ID>.jpg",
        description="Tools for a dataset of your own photos: `check` validates train/val/test.json; "
        "`link` makes a folder of img<ID>.jpg links to photos named otherwise.",
    )
    ds = p.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND")
    c = ds.add_parser(
        "check",
        help="validate train/val/test.json, the photos, and what train reads of outpaint/",
        description="Check a dataset folder before training: the split files, the photos (--images, or "
        "outpaint/images), and, when DIR has outpaint/, everything `gencrop train` reads there "
        "(canvases decoded, detect.json.gz, mask.npz, bad.json), reported as train would: errors "
        "stop training, warnings are what it skips.",
    )
    c.add_argument("dataset_dir", metavar="DIR")
    c.add_argument("--images", metavar="IMG_DIR", help="folder of img<ID>.jpg to check the photos against")
    c.add_argument("--max-problems", type=int, default=50, help="print at most this many problems")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=run_dataset_check)
    ln = ds.add_parser("link", help="make img<ID>.jpg links (ID = file name without extension)")
    ln.add_argument("src_dir", metavar="SRC_DIR")
    ln.add_argument("dst_dir", metavar="DST_DIR")
    ln.set_defaults(func=run_dataset_link)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def run_dataset_check(args) -> int:
    from ..data.own import check_dataset

    if not Path(args.dataset_dir).is_dir():
        raise CommandError(f"{args.dataset_dir}: no such folder")
    report = check_dataset(args.dataset_dir, args.images, progress=not args.quiet)
    for prob in report.problems[: args.max_problems]:
        print(prob)
    if len(report.problems) > args.max_problems:
        print(f"... and {len(report.problems) - args.max_problems} more problems")
    counts = ", ".join(f"{k} {v}" for k, v in report.counts.items())
    verdict = "OK" if not report.errors else counted(len(report.errors), "error")
    print(
        f"{args.dataset_dir}: {counts or 'no split files'}; {verdict}, {counted(len(report.warnings), 'warning')}"
        + ("" if report.photos_checked_in else " (photos not checked: give --images IMG_DIR)")
    )
    return 1 if report.errors else 0


def run_dataset_link(args) -> int:
    from ..data.own import link_photos

    writable(args.dst_dir)
    try:
        r = link_photos(args.src_dir, args.dst_dir)
    except FileNotFoundError as e:
        raise CommandError(str(e)) from None
    print(f"gencrop dataset link: {r.linked} links made, {r.existing} already there, {len(r.conflicts)} conflicts")
    if r.not_jpeg:
        print(
            f"note: {len(r.not_jpeg)} photos are not JPEG and keep their extension (e.g. {r.not_jpeg[0]})",
            file=sys.stderr,
        )
    for c in r.conflicts[:10]:
        print(f"  conflict: {c}", file=sys.stderr)
    return 1 if r.conflicts else 0
