"""What every data-engine stage shares: naming, finding inputs, the progress bar and the summary.

A stage is a loop over keyed items (photo ids or file stems) in which one bad
item must never stop the batch: each failure is recorded with a one-line
reason and reported at the end, together with what was done and what was
skipped because an earlier run had already done it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..data.outpaint import parse_outpaint_name as parse_canvas_name
from ..geometry import Box
from ..io import ImageReadError, list_images, load_image, read_json, write_json
from .sharding import Shard

PHOTO_PREFIX = "img"
MIN_SIDE = 32  # smaller photos carry too little to caption, outpaint or segment
MAX_ASPECT = 8.0  # panoramas beyond 8:1 break the canvas placement and the detectors


# ----------------------------------------------------------------------------
# names
# ----------------------------------------------------------------------------
def photo_id(path: str | Path) -> str | None:
    """``img<ID>.jpg`` -> ``ID`` (None for files not named that way)."""
    stem = Path(path).stem
    if stem.startswith(PHOTO_PREFIX) and len(stem) > len(PHOTO_PREFIX):
        return stem[len(PHOTO_PREFIX) :]
    return None


def outpaint_name(pid: str, box: Box, ext: str = ".jpg") -> str:
    """``img<ID>_X_Y_W_H.jpg``: the name records where the original photo sits in the canvas."""
    x, y, w, h = (int(round(v)) for v in box.xywh)
    return f"{PHOTO_PREFIX}{pid}_{x}_{y}_{w}_{h}{ext}"


def parse_outpaint_name(name: str | Path) -> tuple[str, Box] | None:
    """Inverse of :func:`outpaint_name`: ``(id, frame)``, or None for a name that is not a canvas's.

    The rule lives in :func:`gencrop.data.outpaint.parse_outpaint_name`, the one
    parser of canvas names; this is its engine-side view (a ``Box``; no error).
    """
    try:
        pid, x, y, w, h = parse_canvas_name(Path(name).name)
    except ValueError:
        return None
    return pid, Box(x, y, w, h)


# ----------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------
def read_id_list(path: str | Path) -> list[str]:
    """``--ids FILE.json``: a JSON list of ids (numbers are accepted and read as text)."""
    try:
        ids = read_json(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read id list {path}: {e}") from None
    if isinstance(ids, dict):
        ids = list(ids)
    if not isinstance(ids, list):
        raise ValueError(f"{path}: expected a JSON list of ids")
    return [str(i) for i in ids]


def find_photos(
    img_dir: str | Path, ids: Sequence[str] | None = None, summary: Summary | None = None
) -> dict[str, Path]:
    """``{id: path}`` of the ``img<ID>.<ext>`` photos of a folder, optionally restricted to ``ids``.

    Files that are not named ``img<ID>``, duplicates of an id with another
    extension and requested ids without a photo are reported to ``summary``.
    """
    img_dir = Path(img_dir)
    if not img_dir.is_dir():
        raise FileNotFoundError(f"{img_dir}: no such folder")
    photos: dict[str, Path] = {}
    for path in list_images(img_dir):
        pid = photo_id(path)
        if pid is None:
            if summary is not None:
                summary.fail(path.name, f"not named {PHOTO_PREFIX}<ID>{path.suffix}")
        elif pid in photos:
            if summary is not None:
                summary.fail(path.name, f"duplicate of {photos[pid].name}")
        else:
            photos[pid] = path
    if ids is not None:
        wanted = set(ids)
        for pid in sorted(wanted - set(photos)):
            if summary is not None:
                summary.fail(pid, f"no photo {PHOTO_PREFIX}{pid}.* in {img_dir}")
        photos = {k: v for k, v in photos.items() if k in wanted}
    return photos


def find_images(img_dir: str | Path, ids: Sequence[str] | None = None) -> dict[str, Path]:
    """``{stem: path}`` of every image of a folder (outpainted canvases are keyed by stem).

    With ``ids``, keeps the images whose photo id (from the outpaint or the
    plain ``img<ID>`` name) is listed.
    """
    img_dir = Path(img_dir)
    if not img_dir.is_dir():
        raise FileNotFoundError(f"{img_dir}: no such folder")
    images = {p.stem: p for p in list_images(img_dir)}
    if ids is not None:
        wanted = set(ids)

        def pid_of(p: Path) -> str | None:
            parsed = parse_outpaint_name(p.name)
            return parsed[0] if parsed else photo_id(p)

        images = {k: p for k, p in images.items() if pid_of(p) in wanted}
    return images


def open_photo(path: Path, min_side: int = MIN_SIDE, max_aspect: float = MAX_ASPECT, draft: int | None = None):
    """Load an upright RGB photo or raise ``ImageReadError`` with a one-line reason."""
    img, _ = load_image(path, min_side=draft)
    w, h = img.size
    if min(w, h) < min_side:
        raise ImageReadError(f"too small ({w}x{h} px; need at least {min_side} px a side)")
    if max(w, h) / min(w, h) > max_aspect:
        raise ImageReadError(f"extreme aspect ratio ({w}x{h} px; at most {max_aspect:g}:1)")
    return img


# ----------------------------------------------------------------------------
# summary and progress
# ----------------------------------------------------------------------------
@dataclass
class Summary:
    """What a stage did: done, skipped (already done earlier), failed with reasons."""

    stage: str
    shard: Shard = field(default_factory=Shard)
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    unit: str = "image"

    def ok(self, key: str) -> None:
        self.done.append(key)

    def skip(self, key: str) -> None:
        self.skipped.append(key)

    def fail(self, key: str, reason: str) -> None:
        self.failed.append((key, one_line(reason)))

    def pending(self, keys, is_done) -> list[str]:
        """The keys still to do; those already done are counted as skipped (how a stage resumes)."""
        todo = []
        for key in keys:
            if is_done(key):
                self.skip(key)
            else:
                todo.append(key)
        return todo

    @property
    def seconds(self) -> float:
        return time.time() - self.started

    def text(self, max_failures: int = 20) -> str:
        where = "" if self.shard.is_whole else f" [{self.shard}]"
        rate = len(self.done) / self.seconds if self.done and self.seconds > 0 else 0.0
        lines = [
            f"{self.stage}{where}: {len(self.done)} done, {len(self.skipped)} skipped, "
            f"{len(self.failed)} failed ({self.unit}s) in {self.seconds:.1f} s"
            + (f", {rate:.2f} {self.unit}/s" if rate else "")
        ]
        lines += [f"  {note}" for note in self.notes]
        for key, reason in self.failed[:max_failures]:
            lines.append(f"  failed {key}: {reason}")
        if len(self.failed) > max_failures:
            lines.append(f"  ... and {len(self.failed) - max_failures} more failures")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "stage": self.stage,
            "shard": [self.shard.index, self.shard.count],
            "done": self.done,
            "skipped": self.skipped,
            "failed": [{"key": k, "reason": r} for k, r in self.failed],
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }

    def finish(self, quiet: bool = False, report: str | Path | None = None) -> int:
        """Print the summary (failures go to stderr even with ``-q``), write ``report``; exit code."""
        text = self.text()
        if not quiet:
            print(text, file=sys.stdout, flush=True)
        elif self.failed:
            print(text, file=sys.stderr, flush=True)
        if report:
            write_json(report_path(report, self.shard), self.to_dict())
        return 1 if self.failed and not self.done and not self.skipped else 0


def report_path(path: str | Path, shard: Shard) -> Path:
    """Each shard writes its own report: ``run.json`` -> ``run.part0-of-2.json``."""
    path = Path(path)
    if shard.is_whole:
        return path
    return path.with_name(f"{path.stem}.{shard.tag}{path.suffix}")


def remove_stale_temporaries(folder: str | Path, shard: Shard, max_age_s: float = 3600.0) -> int:
    """Delete temporary files that a killed run left behind (``.name.XXXX.tmp.ext``).

    A sharded job may have other processes writing into the same folder
    right now, so then only temporaries older than ``max_age_s`` are removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    now, removed = time.time(), 0
    for path in folder.glob(".*.tmp*"):
        try:
            if shard.is_whole or now - path.stat().st_mtime > max_age_s:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def progress(total: int, desc: str, quiet: bool, unit: str = "img"):
    """A tqdm bar with throughput (a silent one with ``-q``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, dynamic_ncols=True, smoothing=0.1, file=sys.stderr)


def batched(items: Sequence, size: int) -> Iterable[list]:
    size = max(1, int(size))
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def run_batches(
    keys: Sequence[str],
    *,
    load: Callable,
    process: Callable,
    save: Callable,
    summary: Summary,
    batch_size: int,
    desc: str,
    quiet: bool,
) -> None:
    """Load each item (failures are per item), run ``process`` on the batch, save each result.

    ``load(key) -> x`` and ``save(key, result)`` may raise ``ImageReadError``,
    ``ValueError`` or ``OSError``: that item fails, the others go on. An
    error in ``process`` fails the whole batch with its reason.
    """
    with progress(len(keys), desc, quiet) as bar:
        for batch in batched(keys, batch_size):
            loaded = []
            for key in batch:
                try:
                    loaded.append((key, load(key)))
                except (ImageReadError, ValueError, OSError) as e:
                    summary.fail(key, str(e))
            if loaded:
                try:
                    results = process([x for _, x in loaded])
                except Exception as e:  # a model failure must not lose the rest of the job
                    for key, _ in loaded:
                        summary.fail(key, f"{type(e).__name__}: {e}")
                    results = None
                if results is not None:
                    for (key, _), result in zip(loaded, results):
                        try:
                            save(key, result)
                            summary.ok(key)
                        except (ImageReadError, ValueError, OSError) as e:
                            summary.fail(key, str(e))
            bar.update(len(batch))
