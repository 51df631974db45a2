"""`gencrop batch`: crop a whole catalogue on a Ray cluster, resumably, from and to object storage.

It takes `gencrop crop`'s model, subject, shape and output options (the same
definitions), plus where the cluster is and how to use it. Ray is imported only
when the job runs (docs/scale.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import TYPE_CHECKING

from . import CommandError, counted, writable
from .crop import (
    PhotoInput,
    PhotoInputs,
    add_crop_options,
    check_model,
    crop_line,
    error_line,
    load_subjects,
    match_subjects,
    parse_shapes,
    skipped_text,
    upscale_note,
)

if TYPE_CHECKING:
    from ..geometry import Box

RAY_HINT = "pip install 'gencrop[ray]'"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch",
        help="crop a whole catalogue on a Ray cluster (resumable; folders or object storage)",
        description="Crop every photo of folders or object-store prefixes on a Ray cluster (this machine's "
        "by default). Takes the options of `gencrop crop`; writes the crops and a results table "
        "(OUT/results.parquet, one part per batch) and, run again, crops only the photos that have no "
        "result for the same options yet. Needs the ray extra.",
    )
    p.add_argument(
        "photos",
        nargs="+",
        metavar="PHOTO_DIR_OR_URI",
        help="photo files, folders of photos, or URIs of either (s3://bucket/photos, gs://..., file:///...)",
    )
    add_crop_options(p)
    _reword(
        p,
        "--subjects",
        'subject boxes keyed by photo: a JSON object {"a.jpg": [x, y, w, h]} or a Parquet table with '
        "photo and subject columns (a path or URI)",
    )
    _reword(p, "--out-dir", "folder or URI for the crops and the results table OUT/results.parquet (default: ./crops)")
    g = p.add_argument_group("the cluster")
    g.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="join a running Ray cluster: auto (the one this machine belongs to) or HOST:PORT; "
        "default: start one on this machine",
    )
    g.add_argument(
        "--actors", type=int, help="crop actors, each with a model (default: the cluster's CPUs / --cpus-per-actor)"
    )
    g.add_argument(
        "--cpus-per-actor",
        type=float,
        default=1.0,
        help="CPUs reserved for each actor; its network runs on that many threads (default: 1)",
    )
    p.set_defaults(func=run)


def _reword(parser: argparse.ArgumentParser, option: str, help_text: str) -> None:
    """A shared option's help, as it reads for this command."""
    for action in parser._actions:
        if option in action.option_strings:
            action.help = help_text


def run(args) -> int:
    # Everything the user gave is checked before Ray starts (seconds) and the actors load the model.
    from ..batch.catalogue import CropOptions, Location, list_photos, plan_batch, read_subjects

    shapes = parse_shapes(args.aspect, args.size, args.area)
    if args.find_missing_subjects and not args.subjects:
        raise CommandError("--find-missing-subjects applies to --subjects FILE")
    if args.batch_size < 1:
        raise CommandError(f"--batch-size must be at least 1; got {args.batch_size}")
    if args.actors is not None and args.actors < 1:
        raise CommandError(f"--actors must be at least 1; got {args.actors}")
    if args.cpus_per_actor <= 0:
        raise CommandError(f"--cpus-per-actor must be positive; got {args.cpus_per_actor}")
    subject_all: Box | None = load_subjects(argparse.Namespace(subject=args.subject, subjects=None))[1]  # type: ignore[assignment]
    boxes = None
    if args.subjects:
        try:
            boxes = read_subjects(args.subjects)
        except FileNotFoundError:
            raise CommandError(f"--subjects: no such file: {args.subjects}") from None
        except ValueError as e:
            raise CommandError(f"--subjects: {e}") from None
    try:
        listed = list_photos(args.photos, recursive=args.recursive)
    except (FileNotFoundError, ValueError) as e:
        raise CommandError(str(e)) from None
    for folder in listed.empty_folders:
        print(f"gencrop batch: warning: no photos in folder {folder}", file=sys.stderr)
    skipped = skipped_text(
        PhotoInputs(
            folders_skipped=[Path(f) for f in listed.folders_skipped],
            files_skipped=[Path(PurePosixPath(f).name) for f in listed.files_skipped],
        )
    )
    if not listed.photos:
        raise CommandError("no photos to crop" + (f" ({skipped})" if skipped else ""))
    check_model(args)
    try:
        out = Location.parse(args.out_dir)
    except ValueError as e:
        raise CommandError(f"-o: {e}") from None
    if out.is_local:
        writable(args.out_dir)
    found: dict[str, Box] = {}
    if boxes is not None:  # warnings and the usage error as gencrop crop gives them
        inputs = [PhotoInput(Path(p.photo), Path(p.relative)) for p in listed.photos]
        by_input = match_subjects(inputs, boxes, args)
        found = {p.photo: by_input[i.path] for p, i in zip(listed.photos, inputs) if i.path in by_input}  # type: ignore[misc]
    options = CropOptions(
        out=args.out_dir,
        shapes=tuple(shapes),
        keep_subject=False if args.allow_subject_cut else None,
        write_crops=not args.no_write,
        visualize=args.visualize,
        model=args.model,
        epoch=args.epoch,
        runtime=args.runtime,
        device=args.device,
        subject_finder=args.subject_finder,
    )
    try:
        plan = plan_batch(
            listed,
            options,
            subject=subject_all,
            subjects=None if boxes is None else found,
            find_missing_subjects=args.find_missing_subjects,
            subjects_name=args.subjects or "",
        )
    except ValueError as e:  # an unreadable part of the results table
        raise CommandError(str(e)) from None
    if plan.done:
        print(
            f"gencrop batch: {plan.done} of {counted(len(listed.photos), 'photo')} already cropped with these "
            f"options ({plan.table}): not cropped again",
            file=sys.stderr,
        )
    if plan.other_rows:
        print(
            f"gencrop batch: note: {plan.table} also holds {counted(plan.other_rows, 'row')} made with other "
            f"options (told apart by the options_digest column)",
            file=sys.stderr,
        )
    try:
        import ray  # noqa: F401
    except ImportError:
        raise CommandError(f"gencrop batch runs on Ray: {RAY_HINT}") from None
    from ..batch.ray_job import run_plan

    named = options.named
    shape_named = {shape.name: shape for shape in options.shapes}
    upscaled = 0

    def show(rows: list[dict]) -> None:
        """Each finished batch as gencrop crop prints its photos: crops, warnings, errors."""
        from tqdm import tqdm

        from ..geometry import Box

        nonlocal upscaled
        for row in rows:
            record = {k: v for k, v in row.items() if v is not None and not k.endswith("digest")}
            if "output" in record:
                shape = shape_named.get(record.get("shape") or "free")
                enlarged = upscale_note(SimpleNamespace(shape=shape, box=Box.from_xywh(record["crop"])))
                if enlarged:
                    upscaled += 1
                    tqdm.write(f"gencrop batch: warning: {record['photo']}: {enlarged}", file=sys.stderr)
            if args.json:
                tqdm.write(json.dumps(record), file=sys.stdout)
            elif not args.quiet and "error" not in record:
                tqdm.write(crop_line(record, named), file=sys.stdout)
            if "error" in record:
                tqdm.write(f"gencrop batch: error: {error_line(record['photo'], record['error'])}", file=sys.stderr)

    try:
        summary = run_plan(
            plan,
            actors=args.actors,
            cpus_per_actor=args.cpus_per_actor,
            batch_size=args.batch_size,
            ray_address=args.ray_address,
            progress=not args.quiet,
            on_rows=show,
        )
    except Exception as e:
        if type(e).__module__.split(".")[0] != "ray" and not isinstance(e, ConnectionError):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(
            f"gencrop batch: error: the job stopped ({first}); the batches finished are kept in {plan.table}: "
            f"run the same command again to crop the rest",
            file=sys.stderr,
        )
        return 1
    if not args.quiet or summary.failed:
        line = f"gencrop batch: {summary.cropped} of {counted(len(plan.todo), 'photo')} cropped"
        if summary.failed:
            line += f", {summary.failed} failed"
        if upscaled:
            line += f", {counted(upscaled, 'crop')} enlarged to its --size"
        if plan.done:
            line += f"; {plan.done} done before"
        print(line + (f"; {skipped}" if skipped else "") + f"; table: {plan.table}", file=sys.stderr)
    return 1 if summary.failed else 0
