"""Cropping a catalogue on a Ray cluster: Ray Data's ``map_batches`` over a crop actor.

>>> from gencrop.batch import crop_catalogue
>>> summary = crop_catalogue("s3://shop/photos", "s3://shop/thumbs", shapes=["1:1", "4:5"])

Each actor (:class:`CropPhotos`) loads the model and the subject finder once,
then crops batches of photos: decoded in the actor, one network pass per batch
for every shape, the crops uploaded beside the results table, and the batch's
rows written as one Parquet part before they are handed back. A killed job
loses no finished batch; run again, it crops only what has no row yet
(:func:`gencrop.batch.catalogue.plan_batch`). A photo that cannot be cropped
becomes a row with the ``error`` of ``gencrop crop --json``.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import PurePosixPath

from ..cli.crop import crop_file_name, visualization_file_name
from ..geometry import Box
from ..shapes import Shape
from .catalogue import RESULTS_DIR, BatchPlan, CropOptions, Location, part_name, plan_batch, result_schema

__all__ = ["CropPhotos", "BatchSummary", "run_plan", "crop_catalogue", "init_ray"]

EXAMPLE_PHOTO = PurePosixPath(__file__).parents[1] / "assets" / "astronaut.jpg"


class CropPhotos:
    """A callable class for ``Dataset.map_batches``: rows of photos in, rows of crops out (pyarrow).

    Input rows: ``photo``, ``relative``, ``source``, ``subject`` (``[x, y, w, h]``
    or null: found), ``error`` (already failed), ``options_digest``, ``digest``,
    as :func:`~gencrop.batch.catalogue.plan_batch` makes them. ``input_fs``: the
    photos' pyarrow file system (None: paths on the worker's disks); ``cwd``: the folder that
    relative local paths are relative to (the driver's).
    """

    def __init__(
        self,
        options: CropOptions,
        input_fs=None,
        threads: int | None = None,
        finds_subjects: bool = True,
        cwd: str | None = None,
    ):
        from ..inference import Cropper

        if cwd and os.path.isdir(cwd):
            # the driver's folder: relative paths (photos, -o) mean what they mean to gencrop crop there
            os.chdir(cwd)
        self.options = options
        self.input_fs = input_fs
        self.out = Location.parse(options.out)
        # a worker shares its node with others: onnxruntime's idle threads sleep instead of spinning
        self.cropper = Cropper.from_pretrained(
            options.model,
            epoch=options.epoch,
            device=options.device,
            runtime=options.runtime,
            spin_wait=False,
            subject_finder=options.subject_finder,
        )
        _limit_threads(self.cropper, threads)
        # An actor with several CPUs decodes, finds subjects and writes crops on as many threads
        # (Pillow and onnxruntime release the GIL); the network pass is one batch on all of them.
        several = threads is not None and threads > 1
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="gencrop-photo") if several else None
        self._warm_up(finds_subjects)

    def _warm_up(self, finds_subjects: bool) -> None:
        """One crop of the bundled photo, its subject found when the job finds subjects (and a finder is
        installed): the first batch then pays neither for the first pass nor for loading the finder."""
        from ..inference import SubjectRequired

        if finds_subjects:
            try:
                self.cropper.crop(str(EXAMPLE_PHOTO))
                return
            except SubjectRequired:
                pass
        self.cropper.crop(str(EXAMPLE_PHOTO), (150, 30, 200, 300))

    def __call__(self, batch):
        import pyarrow as pa
        import pyarrow.parquet as pq

        items = batch.to_pylist() if hasattr(batch, "to_pylist") else _rows_of(batch)
        table = pa.Table.from_pylist(self.crop_rows(items), schema=result_schema())
        part = self.out.child(RESULTS_DIR).child(part_name(items))
        part.publish(functools.partial(pq.write_table, table))
        return table

    def crop_rows(self, items: Sequence[Mapping]) -> list[dict]:
        """The result rows of a batch (one per photo and shape; one per failed photo); writes the crops."""
        from ..crop_batch import PHOTO_ERRORS, crop_each

        todo = [i for i, item in enumerate(items) if not item.get("error")]  # the rest failed in planning
        options = self.options
        cropped = crop_each(
            self.cropper,
            lambda i: self._prepare(items[i]),
            todo,
            options.shapes,
            keep_subject=options.keep_subject,
            map_items=self._map,
        )
        outcomes = dict(zip(todo, cropped))

        def rows_of(i: int) -> list[dict]:
            item, outcome = items[i], outcomes.get(i)
            if outcome is None:
                return [_error_row(item, item["error"])]
            try:
                if isinstance(outcome, Exception):
                    raise outcome
                return self._rows(item, outcome)
            except PHOTO_ERRORS as e:
                return [_error_row(item, str(e))]

        return [row for photo_rows in self._map(rows_of, range(len(items))) for row in photo_rows]

    def _map(self, fn: Callable, items: Sequence) -> list:
        """``[fn(x) for x in items]``, on the actor's threads when it has several."""
        return list(self._pool.map(fn, items)) if self._pool is not None else [fn(x) for x in items]

    def _prepare(self, item: Mapping):
        """The photo decoded, its subject given or found: as ``gencrop crop`` prepares a file."""
        subject = None if item.get("subject") is None else Box.from_xywh(item["subject"])
        image = item["source"] if self.input_fs is None else self._download(item)
        return self.cropper.prepare(image, subject, cut=self.options.write_crops)

    def _download(self, item: Mapping) -> BytesIO:
        with self.input_fs.open_input_file(item["source"]) as f:
            data = BytesIO(f.read())
        data.name = item["photo"]  # what a decoding error names, as a path does for gencrop crop
        return data

    def _rows(self, item: Mapping, results: list) -> list[dict]:
        from ..io import save_image

        records = [result.to_json(item["photo"]) for result in results]
        folder = PurePosixPath(item["relative"]).parent
        name = PurePosixPath(item["relative"]).name
        if self.options.write_crops:
            full = results[0].photo
            for result, record in zip(results, records):
                shape_name = result.shape.name if self.options.named else None
                target = self.out.child((folder / crop_file_name(name, shape_name)).as_posix())
                target.publish(functools.partial(save_image, result.cut(full)))
                record["output"] = str(target)
            if self.options.visualize:
                from ..visualize import crop_visualization

                vis = self.out.child((folder / visualization_file_name(name)).as_posix())
                vis.publish(functools.partial(save_image, crop_visualization(full, results[0], self.cropper.dim)))
                for record in records:
                    record["visualization"] = str(vis)
        return [{**record, "options_digest": item["options_digest"], "digest": item["digest"]} for record in records]


def _error_row(item: Mapping, error: str) -> dict:
    return {"photo": item["photo"], "error": error, "options_digest": item["options_digest"], "digest": item["digest"]}


def _rows_of(batch) -> list[dict]:
    """Rows of a pandas or numpy batch (for ``map_batches`` calls with another ``batch_format``)."""
    if hasattr(batch, "to_dict"):
        return batch.to_dict("records")
    columns = list(batch)
    return [dict(zip(columns, values)) for values in zip(*(batch[c] for c in columns))]


def _limit_threads(cropper, threads: int | None) -> None:
    """Give onnxruntime as many threads as the actor has CPUs (its default is every core of the node)."""
    if not threads or getattr(cropper.network, "runtime", None) != "onnx":
        return
    import onnxruntime as ort

    from ..runtime.session_cache import cached_session

    network = cropper.network
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    network.session = cached_session(network.path, options, network.session.get_providers())


# -- the driver -------------------------------------------------------------------------------------


@dataclass
class BatchSummary:
    """What a job did: ``photos`` listed, ``done_before`` (results already written), ``cropped`` and
    ``failed`` now, the failures' messages, and where the table is."""

    photos: int
    done_before: int
    cropped: int = 0
    failed: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (photo, error)
    table: str = ""


def init_ray(address: str | None = None, **kwargs) -> None:
    """Join the cluster at ``address`` (``"auto"``: the one this machine belongs to), or start one here
    (``None``); nothing when Ray is already initialised. Ray's own logging is kept to errors: the
    job's progress bar and summary say what happens."""
    import ray

    if ray.is_initialized():
        return
    kwargs.setdefault("include_dashboard", False)
    kwargs.setdefault("logging_level", logging.ERROR)
    kwargs.setdefault("log_to_driver", False)
    ray.init(address=address, **kwargs)


def run_plan(
    plan: BatchPlan,
    *,
    actors: int | None = None,
    cpus_per_actor: float = 1.0,
    batch_size: int = 8,
    ray_address: str | None = None,
    progress: bool = True,
    on_rows: Callable[[list[dict]], None] | None = None,
    actor_class: type = CropPhotos,
) -> BatchSummary:
    """Crop the photos of ``plan`` on Ray Data and return what happened.

    ``actors``: the size of the actor pool (default: as many as the
    cluster's CPUs hold at ``cpus_per_actor`` each); ``batch_size``: photos per
    network pass and per written part; ``on_rows``: called with each finished
    batch's rows (dicts of :data:`~gencrop.batch.catalogue.RESULT_COLUMNS`).
    ``actor_class``: :class:`CropPhotos` or a subclass.
    """
    from tqdm import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    if cpus_per_actor <= 0:
        raise ValueError(f"cpus_per_actor must be positive; got {cpus_per_actor}")
    summary = BatchSummary(len(plan.listed.photos), plan.done, table=str(plan.table))
    todo = plan.todo
    if not todo:
        return summary
    import ray
    import ray.data

    init_ray(ray_address)
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # before it warns that its bars are off
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the job's own bar counts photos
    context.print_on_execution_start = False
    batches = math.ceil(len(todo) / batch_size)
    if actors is None:
        actors = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_actor))
    actors = max(1, min(actors, batches))
    dataset = ray.data.from_items(todo, override_num_blocks=batches).map_batches(
        actor_class,
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus_per_actor,
        fn_constructor_kwargs={
            "options": plan.options,
            "input_fs": plan.listed.fs,
            "threads": max(1, math.floor(cpus_per_actor)),
            "finds_subjects": any(item["subject"] is None and not item["error"] for item in todo),
            "cwd": os.getcwd(),
        },
    )
    bar = tqdm(total=len(todo), desc="crop", unit="photo", disable=not progress, file=sys.stderr)
    try:
        for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            rows = table.to_pylist()  # type: ignore[union-attr]
            photos: dict[str, str | None] = {}
            for row in rows:
                photos.setdefault(row["photo"], row["error"])
            failed = [(photo, error) for photo, error in photos.items() if error is not None]
            summary.failed += len(failed)
            summary.cropped += len(photos) - len(failed)
            summary.errors += failed
            if on_rows is not None:
                on_rows(rows)
            bar.update(len(photos))
    finally:
        bar.close()
    return summary


def crop_catalogue(
    sources: str | Sequence[str],
    out: str,
    *,
    shapes: Sequence[Shape | str] = ("free",),
    subject: Box | Sequence[float] | None = None,
    subjects: Mapping[str, Box | Sequence[float]] | str | None = None,
    find_missing_subjects: bool = False,
    keep_subject: bool | None = None,
    write_crops: bool = True,
    visualize: bool = False,
    model: str | None = None,
    epoch: int | None = None,
    runtime: str = "auto",
    device: str | None = None,
    subject_finder: str = "auto",
    recursive: bool = False,
    **run_options,
) -> BatchSummary:
    """Crop every photo of ``sources`` (folders, files or URIs) into ``out`` (a folder or URI) on Ray.

    Shapes and subjects as :meth:`gencrop.Cropper.crop` and ``gencrop crop`` take them
    (``subjects`` may name a JSON or Parquet file); the other keywords go to :func:`run_plan`
    (``actors``, ``cpus_per_actor``, ``batch_size``, ``ray_address``, ``progress``).
    Results already in ``out`` for the same options are kept and not cropped again.
    """
    from .catalogue import read_subjects

    options = CropOptions(
        out=str(out),
        shapes=tuple(s if isinstance(s, Shape) else Shape.parse(s) for s in shapes) or (Shape(),),
        keep_subject=keep_subject,
        write_crops=write_crops,
        visualize=visualize,
        model=None if model is None else str(model),
        epoch=epoch,
        runtime=runtime,
        device=device,
        subject_finder=subject_finder,
    )
    name = "the subjects table"
    if isinstance(subjects, str) or hasattr(subjects, "__fspath__"):
        name, subjects = str(subjects), read_subjects(str(subjects))
    assert subjects is None or isinstance(subjects, Mapping)
    plan = plan_batch(
        sources,
        options,
        subject=subject,
        subjects=subjects,
        find_missing_subjects=find_missing_subjects,
        subjects_name=name,
        recursive=recursive,
    )
    return run_plan(plan, **run_options)
