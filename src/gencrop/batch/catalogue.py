"""What a batch job reads and writes, on this machine's disks or in object storage; no Ray here.

* **Sources**: a local folder or file, or a URI that pyarrow's file systems
  (and so Ray Data's readers) accept: ``s3://bucket/photos``, ``gs://...``,
  ``abfs://...``, ``file:///...``.
* **The results table**: ``OUT/results.parquet/part-*.parquet``, one Parquet part
  per batch of photos, each written whole or not at all (a temporary file
  renamed on a disk; one upload, which an object store shows only when
  complete). A row is one crop: the columns of ``gencrop crop --json``
  (``photo``, ``crop``, ``subject``, ``size``, ``subject_source``, ``shape``,
  ``output``, ``visualization``, or ``error``) plus ``options_digest`` and ``digest``.
* **Resuming**: ``digest`` hashes the options that decide a photo's crops
  (model, shapes, subject rule, files asked for) and the subject given for it;
  a photo whose ``(photo, digest)`` is already in the table is not cropped again.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..geometry import Box
from ..io import IMAGE_EXTENSIONS, atomic_path, read_json
from ..shapes import Shape

__all__ = [
    "RESULTS_DIR",
    "RESULT_COLUMNS",
    "Location",
    "CropOptions",
    "BatchPlan",
    "list_photos",
    "read_subjects",
    "plan_batch",
    "read_results",
    "result_schema",
]

RESULTS_DIR = "results.parquet"  # the table: a folder of parts, as Spark and Ray Data write one
RESULT_COLUMNS = (
    "photo",
    "crop",
    "subject",
    "size",
    "subject_source",
    "shape",
    "output",
    "visualization",
    "error",
    "options_digest",
    "digest",
)


def result_schema():
    """The results table's columns (pyarrow types): those of ``gencrop crop --json``, plus the digests."""
    import pyarrow as pa

    return pa.schema(
        [
            ("photo", pa.string()),  # the local path as given, or the URI
            ("crop", pa.list_(pa.int32(), 4)),  # x, y, w, h in whole photo pixels
            ("subject", pa.list_(pa.float64(), 4)),  # x, y, w, h (2 decimals)
            ("size", pa.list_(pa.int32(), 2)),  # width, height of the upright photo
            ("subject_source", pa.string()),  # given, mask, segmentation, face, saliency, detection
            ("shape", pa.string()),  # 1x1, 16x9, 1200x630 ... (null: the free crop)
            ("output", pa.string()),  # the written crop
            ("visualization", pa.string()),
            ("error", pa.string()),  # the one-line reason a photo failed (its other columns null)
            ("options_digest", pa.string()),  # of the options (CropOptions.digest)
            ("digest", pa.string()),  # of the options and the photo's given subject: what a rerun skips
        ]
    )


@dataclass(frozen=True)
class Location:
    """A folder or file on this machine (``fs`` None: written through :mod:`gencrop.io`) or in a pyarrow
    file system (``path`` without the scheme, ``uri`` as the user wrote it)."""

    path: str
    fs: Any = None  # a pyarrow.fs.FileSystem
    uri: str = ""

    @classmethod
    def parse(cls, text: str | Path) -> Location:
        text = str(text)
        if "://" not in text:
            local = str(Path(text))  # as gencrop crop shows a path: "./a.jpg" is "a.jpg"
            return cls(local, None, local)
        import pyarrow.fs as pafs

        try:
            fs, path = pafs.FileSystem.from_uri(text)
        except (ValueError, OSError) as e:  # pyarrow: ArrowInvalid (a ValueError) for unknown schemes
            raise ValueError(f"{text}: not a file system pyarrow can open ({e})") from None
        return cls(path.rstrip("/") or path, fs, text.rstrip("/"))

    @property
    def is_local(self) -> bool:
        return self.fs is None

    def child(self, relative: str) -> Location:
        """``relative`` (a POSIX path) inside this folder."""
        if self.is_local:
            return Location(str(Path(self.path) / relative))
        return Location(f"{self.path}/{relative}", self.fs, f"{self.uri}/{relative}")

    def __str__(self) -> str:
        return self.uri or self.path

    def open_input(self):
        """A binary file to read (named after the location, which is what a decoding error names)."""
        if self.is_local:
            return open(self.path, "rb")
        f = self.fs.open_input_file(self.path)
        return _Named(f, str(self))

    def publish(self, write: Callable[[Path], None]) -> None:
        """Write this file whole or not at all: ``write`` fills a local temporary file with the
        location's suffix, which is then renamed into place (a disk) or uploaded in one piece."""
        if self.is_local:
            with atomic_path(self.path) as tmp:
                write(tmp)
            return
        import pyarrow.fs as pafs

        with tempfile.TemporaryDirectory(prefix="gencrop-") as d:
            tmp = Path(d) / PurePosixPath(self.path).name
            write(tmp)
            parent = str(PurePosixPath(self.path).parent)
            self.fs.create_dir(parent, recursive=True)
            pafs.copy_files(str(tmp), self.path, destination_filesystem=self.fs)

    def files(self, recursive: bool) -> tuple[list[str], list[str]] | None:
        """(files, sub-folders not entered) of a folder, as paths relative to it; None when it is no folder."""
        if self.is_local:
            return None  # local folders are scanned by gencrop.io.scan_images
        import pyarrow.fs as pafs

        info = self.fs.get_file_info(self.path)
        if info.type != pafs.FileType.Directory:
            return None
        entries = self.fs.get_file_info(pafs.FileSelector(self.path, recursive=recursive))
        files, folders = [], []
        for entry in entries:
            relative = entry.path[len(self.path) :].lstrip("/")
            if any(part.startswith(".") for part in relative.split("/")):
                continue  # hidden, as gencrop.io.scan_images: temporary files of atomic writes among them
            if entry.type == pafs.FileType.Directory:
                if not recursive:
                    folders.append(relative)
            else:
                files.append(relative)
        return sorted(files), sorted(folders)

    def exists(self) -> bool:
        if self.is_local:
            return Path(self.path).exists()
        import pyarrow.fs as pafs

        return self.fs.get_file_info(self.path).type != pafs.FileType.NotFound


class _Named:
    """A pyarrow input file with the ``name`` a decoding error should show."""

    def __init__(self, f, name: str):
        self._f, self.name = f, name

    def read(self, *args):
        return self._f.read(*args)

    def close(self):
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass(frozen=True)
class Photo:
    """A photo of the job: ``photo`` as shown and stored (a local path as given, or a URI), ``relative``
    its path inside the folder given (its name for a file given): where its crops go; ``source`` its
    path in its file system."""

    photo: str
    relative: str
    source: str


@dataclass
class PhotoList:
    photos: list[Photo] = field(default_factory=list)
    folders_skipped: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    empty_folders: list[str] = field(default_factory=list)
    fs: Any = None  # the photos' pyarrow file system (None: this machine's files)


def list_photos(sources: str | Sequence[str], recursive: bool = False) -> PhotoList:
    """The photos of folders (sorted; sub-folders with ``recursive``), files and URIs, as ``gencrop crop``
    lists a folder. A source that does not exist is a ``FileNotFoundError`` naming it."""
    from ..io import scan_images

    out = PhotoList()
    kinds = set()
    for source in [sources] if isinstance(sources, (str, Path)) else sources:
        where = Location.parse(source)
        kinds.add(type(where.fs).__name__ if where.fs is not None else "local")
        if len(kinds) > 1:
            both = " and ".join(sorted(kinds))
            raise ValueError(f"{source}: the photos of one job come from one file system, not {both}")
        out.fs = where.fs
        if not where.exists():
            raise FileNotFoundError(f"no such file or folder: {source}")
        if where.is_local and Path(where.path).is_dir():
            scan = scan_images(where.path, recursive=recursive)
            photos = [Photo(str(p), p.relative_to(where.path).as_posix(), str(p)) for p in scan.images]
            out.folders_skipped += [str(p) for p in scan.folders]
            out.files_skipped += [str(p) for p in scan.other_files]
        elif (listing := where.files(recursive)) is not None:
            files, folders = listing
            photos = [Photo(str(where.child(f)), f, where.child(f).path) for f in files if _is_photo(f)]
            out.files_skipped += [str(where.child(f)) for f in files if not _is_photo(f)]
            out.folders_skipped += [str(where.child(f)) for f in folders]
        else:  # a file given is cropped whatever its name says (as gencrop crop does)
            photos = [Photo(str(where), PurePosixPath(str(source).rstrip("/")).name, where.path)]
            out.photos += photos
            continue
        if not photos:
            out.empty_folders.append(str(source))
        out.photos += photos
    return out


def _is_photo(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def read_subjects(source: str | Path) -> dict[str, Box]:
    """Subject boxes keyed by photo: a JSON object ``{"a.jpg": [x, y, w, h]}`` or a Parquet table with a
    ``photo`` (or ``path``) column and a ``subject`` column of ``[x, y, w, h]`` (or columns x, y, w, h).

    Keys are matched as ``gencrop crop --subjects`` matches them: path inside the folder given, file
    name, or the photo as given. A bad entry is a ``ValueError`` naming the file and the entry."""
    where = Location.parse(source)
    if str(source).lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(where.path, filesystem=where.fs)
        except (OSError, ValueError) as e:
            raise ValueError(f"{source}: not a readable Parquet table ({e})") from None
        names = table.column_names
        key = next((c for c in ("photo", "path") if c in names), None)
        if key is None:
            raise ValueError(f"{source}: no 'photo' (or 'path') column; columns are {', '.join(names)}")
        if "subject" in names:
            values = table.column("subject").to_pylist()
        elif all(c in names for c in "xywh"):
            values = [list(v) for v in zip(*(table.column(c).to_pylist() for c in "xywh"))]
        else:
            raise ValueError(f"{source}: no 'subject' column (nor x, y, w, h); columns are {', '.join(names)}")
        entries: Iterable = zip(table.column(key).to_pylist(), values)
    else:
        if where.is_local:
            data = read_json(where.path)
        else:
            with where.open_input() as f:
                data = json.loads(f.read())
        if not isinstance(data, dict):
            raise ValueError(f'{source}: expected a JSON object {{"photo.jpg": [x, y, w, h], ...}}')
        entries = data.items()
    boxes = {}
    for name, value in entries:
        try:
            if not (isinstance(value, (list, tuple)) and len(value) == 4):
                raise ValueError("expected [x, y, w, h]")
            boxes[str(name)] = Box.parse(",".join(str(v) for v in value))
        except ValueError as e:
            raise ValueError(f"{source}: entry {name!r}: {e}") from None
    return boxes


@dataclass(frozen=True)
class CropOptions:
    """What decides a photo's crops and files: everything a crop actor needs besides the photos."""

    out: str  # folder or URI of the table and the crops
    shapes: tuple[Shape, ...] = (Shape(),)
    keep_subject: bool | None = None  # None: a given subject is kept, a found one is not (as Cropper)
    write_crops: bool = True
    visualize: bool = False
    model: str | None = None  # None: the bundled model
    epoch: int | None = None
    runtime: str = "auto"
    device: str | None = None
    subject_finder: str = "auto"  # for photos without a given subject (names as in gencrop.subjects)

    @property
    def named(self) -> bool:
        """Crops are named after their shape (``NAME_1x1.jpg``) unless one free crop is asked for."""
        return len(self.shapes) > 1 or not self.shapes[0].is_free

    def digest(self) -> str:
        """A hash of what makes the results: the model's files, the shapes, the subject rule, the files written."""
        identity = {
            "model": _model_identity(self.model),
            "epoch": self.epoch,
            "runtime": self.runtime,
            "subject_finder": self.subject_finder,
            "shapes": [s.to_json() for s in self.shapes],
            "keep_subject": self.keep_subject,
            "write_crops": self.write_crops,
            "visualize": self.visualize,
            "out": self.out,
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def _model_identity(model: str | None) -> str:
    """The model's weights digest (its files' contents, not their names or times)."""
    from ..runtime.files import ONNX_NAME, resolve_model_dir, weights_digest

    if model is not None and str(model).endswith(".onnx") and Path(model).is_file():
        return _file_digest(Path(model))
    try:
        directory = resolve_model_dir(model)
    except (FileNotFoundError, NotADirectoryError):
        return str(model)  # the job's own model load reports it
    return weights_digest(directory) or (
        _file_digest(directory / ONNX_NAME) if (directory / ONNX_NAME).is_file() else str(directory)
    )


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def photo_digest(options_digest: str, subject: Box | None) -> str:
    """The ``digest`` of a photo's rows: the options and the subject given for it (None: found)."""
    given = None if subject is None else [round(v, 4) for v in subject.xywh]
    return hashlib.sha256(f"{options_digest}|{json.dumps(given)}".encode()).hexdigest()[:20]


@dataclass
class BatchPlan:
    """What a job will do: the photos to crop (as rows for Ray Data) and what was passed over."""

    options: CropOptions
    # {"photo", "relative", "source", "subject" ([x, y, w, h] or None), "error", "options_digest", "digest"}
    todo: list[dict]
    listed: PhotoList
    done: int  # photos already in the table with these options and subjects
    other_rows: int  # rows in the table made with other options or subjects
    unused_subject_keys: list[str] = field(default_factory=list)
    without_subject: list[str] = field(default_factory=list)  # photos with no entry in ``subjects``

    @property
    def table(self) -> Location:
        return Location.parse(self.options.out).child(RESULTS_DIR)


def plan_batch(
    sources: str | Sequence[str] | PhotoList,
    options: CropOptions,
    *,
    subject: Box | Sequence[float] | None = None,
    subjects: Mapping[str, Box | Sequence[float]] | None = None,
    find_missing_subjects: bool = False,
    subjects_name: str = "the subjects table",
    recursive: bool = False,
) -> BatchPlan:
    """List the photos, give each its subject, and leave out those already in the results table.

    ``subject``: one box for every photo; ``subjects``: boxes keyed by path
    inside the folder given, file name, or photo as given (as ``gencrop crop
    --subjects``); a photo without an entry becomes an error row unless
    ``find_missing_subjects``. ``subjects_name`` is what that error calls the table.
    """
    listed = sources if isinstance(sources, PhotoList) else list_photos(sources, recursive=recursive)
    job_digest = options.digest()
    done_keys, other_rows = _done(Location.parse(options.out).child(RESULTS_DIR), job_digest)
    one = None if subject is None else (subject if isinstance(subject, Box) else Box.from_xywh(subject))
    boxes = None
    if subjects is not None:
        boxes = {k: v if isinstance(v, Box) else Box.from_xywh(v) for k, v in subjects.items()}
    used: set[str] = set()
    todo, without, done = [], [], 0
    for p in listed.photos:
        box, error = one, None
        if boxes is not None:
            key = next((k for k in (p.relative, PurePosixPath(p.relative).name, p.photo) if k in boxes), None)
            if key is not None:
                box = boxes[key]
                used.add(key)
            else:
                without.append(p.photo)
                if not find_missing_subjects:
                    error = f"no entry in {subjects_name} (--find-missing-subjects finds its subject)"
        digest = photo_digest(job_digest, box)
        if (p.photo, digest) in done_keys:
            done += 1
            continue
        subject_xywh = None if box is None else list(box.xywh)
        todo.append(
            {
                "photo": p.photo,
                "relative": p.relative,
                "source": p.source,
                "subject": subject_xywh,
                "error": error,
                "options_digest": job_digest,
                "digest": digest,
            }
        )
    unused = [k for k in boxes if k not in used] if boxes is not None else []
    return BatchPlan(options, todo, listed, done, other_rows, unused, without)


def _done(table: Location, options_digest: str) -> tuple[set[tuple[str, str]], int]:
    """The (photo, digest) pairs of the parts written so far, and how many rows were made with other options."""
    parts = _parts(table)
    if not parts:
        return set(), 0
    import pyarrow.parquet as pq

    keys: set[tuple[str, str]] = set()
    other = 0
    for part in parts:
        try:
            t = pq.read_table(part.path, columns=["photo", "options_digest", "digest"], filesystem=part.fs)
        except (OSError, ValueError) as e:
            raise ValueError(f"{part}: not a readable results part ({e}); delete it to crop its photos again") from None
        keys.update(zip(t.column("photo").to_pylist(), t.column("digest").to_pylist()))
        other += sum(d != options_digest for d in t.column("options_digest").to_pylist())
    return keys, other


def _parts(table: Location) -> list[Location]:
    if table.is_local:
        folder = Path(table.path)
        return [Location(str(p)) for p in sorted(folder.glob("part-*.parquet"))] if folder.is_dir() else []
    listing = table.files(recursive=False)
    if listing is None:
        return []
    return [table.child(name) for name in listing[0] if name.startswith("part-") and name.endswith(".parquet")]


def part_name(rows: Sequence[dict]) -> str:
    """A part's file name, from its photos and digests: the same batch cropped again replaces its part."""
    h = hashlib.sha256("\n".join(f"{r['photo']}|{r['digest']}" for r in rows).encode()).hexdigest()[:20]
    return f"part-{h}.parquet"


def read_results(out: str | Path, options: CropOptions | None = None):
    """The results table of ``out`` as one pyarrow Table; only the rows made with ``options`` when given
    (a folder cropped again with other options holds both sets, told apart by ``options_digest``)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    parts = _parts(Location.parse(out).child(RESULTS_DIR))
    tables = [pq.read_table(p.path, filesystem=p.fs, schema=result_schema()) for p in parts]
    table = pa.concat_tables(tables) if tables else result_schema().empty_table()
    if options is None:
        return table
    return table.filter(pc.equal(table.column("options_digest"), options.digest()))
