"""The paper's Unsplash splits: from published SHA-256 ids to photo ids, and the photos themselves.

The splits are published as SHA-256 hashes of Unsplash photo ids (the photos
may only be obtained through Unsplash's own dataset). ``prepare`` hashes
every id of the dataset's ``photos.tsv*`` tables to map the splits back;
``download`` fetches the photos those splits name, in parallel, resumably,
at the size the paper used (shortest side 1024 px), as ``img<ID>.jpg``.
"""

from __future__ import annotations

import csv
import hashlib
import io as _io
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..io import atomic_path, read_json, write_json
from ..validation import DataError

__all__ = [
    "CATEGORIES",
    "SPLITS",
    "MAX_SHORT_SIDE",
    "sha256_id",
    "read_photos_table",
    "prepare",
    "DownloadSummary",
    "download_photo",
    "download",
    "wanted_ids",
]

CATEGORIES = ("portrait", "cat", "dog", "bird", "horse", "car", "combo")
SPLITS = ("train", "val", "test")
MAX_SHORT_SIDE = 1024
TESTEVAL_FILE = "testeval_sha256.json.gz"


def sha256_id(photo_id: str) -> str:
    return hashlib.sha256(photo_id.encode("utf-8")).hexdigest()


def read_photos_table(
    dataset_dir: str | os.PathLike, columns: tuple[str, ...] = ("photo_image_url",)
) -> dict[str, dict]:
    """``{photo_id: {column: value}}`` from every ``photos.tsv*`` file of the Unsplash dataset."""
    dataset_dir = Path(dataset_dir)
    files = sorted(p for p in dataset_dir.glob("photos.tsv*") if p.is_file())
    if not files:
        raise FileNotFoundError(f"{dataset_dir}: no photos.tsv* files (is this the extracted Unsplash dataset?)")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    table: dict[str, dict] = {}
    for path in files:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t")
            if reader.fieldnames is None or "photo_id" not in reader.fieldnames:
                raise ValueError(f"{path}: no photo_id column")
            for row in reader:
                pid = row.get("photo_id")
                if pid:
                    table[pid] = {c: row.get(c) for c in columns}
    return table


# ----------------------------------------------------------------------------
# prepare
# ----------------------------------------------------------------------------
def prepare(
    hash_dir: str | os.PathLike,
    dataset_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    categories: tuple[str, ...] = CATEGORIES,
) -> dict:
    """Write ``out/<category>/{images,train,val,test}.json`` with photo ids; returns counts per file.

    Split entries keep their fields and gain ``id``. ``images.json`` lists
    the ids of ``ids_sha256.json`` (or, where that file is not published, of
    the splits). Entries whose hash matches no photo of the tables are left
    out and counted as missing. ``testeval_sha256.json.gz`` is copied beside
    ``test.json`` so the folder is ready for ``gencrop eval --benchmark unsplash``.
    """
    hash_dir, out_dir = Path(hash_dir), Path(out_dir)
    hash_to_id = {sha256_id(pid): pid for pid in read_photos_table(dataset_dir, columns=())}
    report: dict[str, dict] = {}
    for cat in categories:
        src, dst = hash_dir / cat, out_dir / cat
        if not src.is_dir():
            report[cat] = {"error": f"{src}: no such folder"}
            continue
        cat_report: dict[str, dict] = {}
        split_ids: list[str] = []
        for split in SPLITS:
            path = src / f"{split}_sha256.json"
            if not path.is_file():
                cat_report[split] = {"absent": True}
                continue
            entries = read_json(path)
            if not isinstance(entries, list):
                raise DataError(f'must be a JSON list of {{"hash_id", ...}}; got {type(entries).__name__}', path)
            found, missing = [], 0
            for i, entry in enumerate(entries):
                if not isinstance(entry, dict) or not isinstance(entry.get("hash_id"), str):
                    raise DataError('must be an object with a "hash_id" string', path, i)
                photo_id = hash_to_id.get(entry["hash_id"])
                if photo_id is None:
                    missing += 1
                    continue
                found.append({**entry, "id": photo_id})
            write_json(dst / f"{split}.json", found)
            split_ids += [e["id"] for e in found]
            cat_report[split] = {"total": len(entries), "found": len(found), "missing": missing}
        ids_file = src / "ids_sha256.json"
        if ids_file.is_file():
            hashes = read_json(ids_file)
            if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
                raise DataError("must be a JSON list of SHA-256 strings", ids_file)
            ids = [hash_to_id[h] for h in hashes if h in hash_to_id]
            cat_report["images"] = {"total": len(hashes), "found": len(ids), "missing": len(hashes) - len(ids)}
        else:
            ids = list(dict.fromkeys(split_ids))
            cat_report["images"] = {"total": len(ids), "found": len(ids), "missing": 0, "from_splits": True}
        write_json(dst / "images.json", ids)
        if (src / TESTEVAL_FILE).is_file():
            with atomic_path(dst / TESTEVAL_FILE) as tmp:
                shutil.copyfile(src / TESTEVAL_FILE, tmp)
        report[cat] = cat_report
    return report


# ----------------------------------------------------------------------------
# download
# ----------------------------------------------------------------------------
class _Permanent(Exception):
    """A failure that retrying cannot fix (not found, not a photo, RGBA)."""


@dataclass
class DownloadSummary:
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # photo id -> reason
    bytes: int = 0

    def line(self) -> str:
        return (
            f"unsplash download: {self.done} downloaded, {self.skipped} already there, "
            f"{len(self.failed)} failed (of {self.total})"
        )


def _with_query(url: str, **params) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query) + [(k, str(v)) for k, v in params.items()]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _fetch(url: str, timeout: float) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "gencrop-unsplash-download"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()
    except urllib.error.HTTPError as e:
        if e.code in (400, 401, 403, 404, 410):
            raise _Permanent(f"HTTP {e.code}") from None
        raise


def _decode(data: bytes) -> Image.Image:
    try:
        im = Image.open(_io.BytesIO(data))
        im.load()
    except Exception as e:  # PIL raises many types for corrupt data
        raise _Permanent(f"not a readable image ({type(e).__name__})") from None
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        raise _Permanent(f"RGBA image (mode {im.mode}) rejected")
    return im


def download_photo(
    photo_id: str, url: str, out_path: Path, *, max_short: int = MAX_SHORT_SIDE, timeout: float = 30.0
) -> int:
    """Fetch one photo at shortest side ``max_short``; returns the bytes written.

    The image server is asked for that size (height first; a portrait photo is
    asked again by width); a photo that still comes larger is resized here.
    """
    im = _decode(_fetch(_with_query(url, height=max_short), timeout))
    if im.width < im.height:
        im = _decode(_fetch(_with_query(url, width=max_short), timeout))
    im = im.convert("RGB") if im.mode != "RGB" else im
    short = min(im.size)
    if short > max_short:
        s = max_short / short
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)
    with atomic_path(out_path) as tmp:
        im.save(tmp, format="JPEG", quality=95)
    return out_path.stat().st_size


def wanted_ids(data_dir: str | os.PathLike) -> set[str]:
    """Every id in ``<data_dir>/<category>/images.json`` (written by :func:`prepare`)."""
    ids: set[str] = set()
    data_dir = Path(data_dir)
    if data_dir.is_dir():
        for sub in sorted(data_dir.iterdir()):
            f = sub / "images.json"
            if f.is_file():
                listed = read_json(f)
                if not isinstance(listed, list):
                    raise DataError(f"must be a JSON list of photo ids; got {type(listed).__name__}", f)
                ids.update(str(i) for i in listed if i)
    return ids


def download(
    dataset_dir: str | os.PathLike,
    img_dir: str | os.PathLike,
    *,
    ids: set[str] | None = None,
    workers: int = 16,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 30.0,
    max_short: int = MAX_SHORT_SIDE,
    progress: bool = True,
) -> DownloadSummary:
    """Download the photos of ``ids`` (all photos of the tables with ``None``) into ``img_dir``.

    Resumable: a photo already saved is skipped (files are written atomically,
    so "exists" means "complete"). Network errors and server errors are
    retried ``retries`` times with exponential backoff; a missing photo, a
    corrupt file or an RGBA image fails at once.
    """
    from tqdm import tqdm

    img_dir = Path(img_dir)
    img_dir.mkdir(parents=True, exist_ok=True)
    table = read_photos_table(dataset_dir)
    todo = [(pid, row["photo_image_url"]) for pid, row in table.items() if ids is None or pid in ids]
    summary = DownloadSummary(total=len(todo))
    if ids is not None:
        for pid in sorted(ids - set(table)):
            summary.failed[pid] = "not in the dataset's photos.tsv"
        summary.total += len(summary.failed)

    def work(pid: str, url: str) -> tuple[str, str, int, str]:
        out = img_dir / f"img{pid}.jpg"
        if out.is_file():
            return pid, "skipped", 0, ""
        if not url:
            return pid, "failed", 0, "no photo_image_url"
        last = ""
        for attempt in range(retries + 1):
            try:
                return pid, "done", download_photo(pid, url, out, max_short=max_short, timeout=timeout), ""
            except _Permanent as e:
                return pid, "failed", 0, str(e)
            except (OSError, urllib.error.URLError) as e:
                last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
                if attempt < retries:
                    time.sleep(backoff * 2**attempt)
        return pid, "failed", 0, f"{last} (after {retries + 1} tries)"

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(work, pid, url) for pid, url in todo]
        for fut in tqdm(
            as_completed(futures),
            total=len(futures),
            desc="unsplash download",
            unit="photo",
            disable=not progress,
            dynamic_ncols=True,
        ):
            pid, status, size, reason = fut.result()
            if status == "done":
                summary.done += 1
                summary.bytes += size
            elif status == "skipped":
                summary.skipped += 1
            else:
                summary.failed[pid] = reason
    return summary
