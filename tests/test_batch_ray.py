"""`gencrop batch` / gencrop.batch: the same crops as `gencrop crop`, errors as rows, resuming after a kill.

The Ray tests share one local cluster (2 CPUs, a small object store, no
dashboard) started by this module; they run over real FCDB photos when the
shared data folder is there and over the bundled example photo otherwise.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from gencrop.cli import main

pytest.importorskip("pyarrow")

REPO = Path(__file__).resolve().parents[1]
SHAPES = ["--aspect", "1:1", "--size", "1200x800"]  # larger than the photos' crops: they are enlarged


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def photos(tmp_path_factory, example_photo) -> tuple[Path, Path]:
    """A folder of photos (real ones when the shared data is there), two broken ones, and a
    subjects file: an off-centre box per photo (asymmetric, so x/y or xywh/xyxy mix-ups show)."""
    from conftest import shared_root

    d = tmp_path_factory.mktemp("batch") / "photos"
    d.mkdir()
    fcdb = shared_root() / "data" / "fcdb" / "images"
    if fcdb.is_dir():
        for p in sorted(fcdb.glob("*.jpg"))[:5]:
            shutil.copy(p, d / p.name)
    else:
        shutil.copy(example_photo, d / "astronaut.jpg")
        Image.open(example_photo).crop((0, 40, 512, 400)).save(d / "wide.png")
    (d / "broken.jpg").write_bytes(b"not a photo")
    first = sorted(d.glob("*.jpg"))[0].read_bytes()
    (d / "truncated.jpg").write_bytes(first[: len(first) // 3])
    boxes = {}
    for p in sorted(d.iterdir()):
        try:
            w, h = Image.open(p).size
        except OSError:
            continue
        boxes[p.name] = [round(w * 0.55, 1), round(h * 0.2, 1), round(w * 0.25, 1), round(h * 0.45, 1)]
    subjects = d.parent / "subjects.json"
    subjects.write_text(json.dumps(boxes))
    return d, subjects


# -- without Ray ------------------------------------------------------------------------------------


def test_no_other_command_imports_ray_or_pyarrow(tmp_path, example_photo):
    script = (
        "import contextlib, io, json, sys\n"
        "from gencrop.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        f"code = main(['crop', {str(example_photo)!r}, '--subject', '150,30,200,300', '--no-write', '-q'])\n"
        f"usage = main(['batch', {str(tmp_path / 'nosuch')!r}])\n"
        "print(json.dumps([code, usage, sorted(m for m in ('ray', 'pyarrow') if m in sys.modules)]))\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    code, usage, heavy = json.loads(r.stdout.splitlines()[-1])
    assert (code, usage) == (0, 2), r.stderr
    assert "no such file or folder" in r.stderr
    assert heavy == []


def test_digest_follows_what_makes_the_crops(tmp_path):
    from gencrop.batch.catalogue import CropOptions, photo_digest
    from gencrop.geometry import Box
    from gencrop.shapes import Shape

    base = CropOptions(out=str(tmp_path), shapes=(Shape.parse("1:1"),))
    assert base.digest() == CropOptions(out=str(tmp_path), shapes=(Shape.parse("1:1"),)).digest()
    for other in (
        CropOptions(out=str(tmp_path), shapes=(Shape.parse("4:5"),)),
        CropOptions(out=str(tmp_path), shapes=(Shape.parse("1:1"),), keep_subject=False),
        CropOptions(out=str(tmp_path), shapes=(Shape.parse("1:1"),), write_crops=False),
    ):
        assert other.digest() != base.digest()
    job = base.digest()
    assert photo_digest(job, Box(1, 2, 3, 4)) != photo_digest(job, Box(2, 1, 3, 4)) != photo_digest(job, None)


def test_sources_and_subject_tables_in_a_pyarrow_file_system(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gencrop.batch.catalogue import list_photos, read_subjects

    (tmp_path / "in" / "sub").mkdir(parents=True)
    for name in ("b.jpg", "a.PNG", "notes.txt", ".a.tmp.jpg", "sub/c.jpg"):
        (tmp_path / "in" / name).write_bytes(b"x")
    listed = list_photos(f"file://{tmp_path}/in")
    assert [p.photo for p in listed.photos] == [f"file://{tmp_path}/in/a.PNG", f"file://{tmp_path}/in/b.jpg"]
    assert [p.relative for p in listed.photos] == ["a.PNG", "b.jpg"]
    assert listed.files_skipped == [f"file://{tmp_path}/in/notes.txt"]
    assert listed.folders_skipped == [f"file://{tmp_path}/in/sub"]
    deep = list_photos(f"file://{tmp_path}/in", recursive=True)
    assert [p.relative for p in deep.photos] == ["a.PNG", "b.jpg", "sub/c.jpg"]
    with pytest.raises(FileNotFoundError, match="nosuch"):
        list_photos(f"file://{tmp_path}/nosuch")

    table = pa.table({"path": ["a.PNG", "sub/c.jpg"], "subject": [[1, 2, 30, 40], [5, 6, 7, 8]]})
    pq.write_table(table, tmp_path / "s.parquet")
    boxes = read_subjects(f"file://{tmp_path}/s.parquet")
    assert {k: v.xywh for k, v in boxes.items()} == {"a.PNG": (1, 2, 30, 40), "sub/c.jpg": (5, 6, 7, 8)}
    (tmp_path / "s.json").write_text(json.dumps({"b.jpg": [1, 2, 3]}))
    with pytest.raises(ValueError, match=r"s\.json: entry 'b\.jpg'"):
        read_subjects(tmp_path / "s.json")


def test_an_actor_with_several_cpus_gives_the_rows_of_one(photos, tmp_path):
    """Two CPUs: photos prepared and crops written on two threads, the same rows in the same order
    (error rows included) and the same files as on one."""
    from gencrop.batch.catalogue import CropOptions, plan_batch
    from gencrop.batch.ray_job import CropPhotos
    from gencrop.shapes import Shape

    folder, _ = photos
    rows = {}
    for threads in (1, 2):
        options = CropOptions(out=str(tmp_path / str(threads)), shapes=(Shape.parse("1:1"), Shape.parse("3:2")))
        actor = CropPhotos(options, threads=threads)
        assert (actor._pool is None) == (threads == 1)
        items = plan_batch([str(p) for p in sorted(folder.iterdir())], options).todo
        folder_bound = ("output", "options_digest", "digest")  # name the output folder
        rows[threads] = [{k: v for k, v in row.items() if k not in folder_bound} for row in actor.crop_rows(items)]
        written = sorted(p.relative_to(tmp_path / str(threads)) for p in (tmp_path / str(threads)).rglob("*.*"))
        rows[threads].append({"written": [str(p) for p in written]})
    assert rows[2] == rows[1]
    assert sum("error" in r and r["error"] is not None for r in rows[1][:-1]) == 2  # broken and truncated
    assert len(rows[1][-1]["written"]) == 2 * (len(list(folder.iterdir())) - 2)


# -- on a local Ray cluster --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    from gencrop.batch.ray_job import init_ray

    init_ray(None, num_cpus=2, object_store_memory=80 * 1024**2)
    yield ray
    ray.shutdown()


def _by_photo_and_shape(lines: str) -> dict:
    records = [json.loads(line) for line in lines.splitlines() if line.startswith("{")]
    return {(r["photo"], r.get("shape")): r for r in records}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_batch_gives_the_crops_of_gencrop_crop(ray_cluster, photos, tmp_path):
    folder, subjects = photos
    common = [str(folder), "--subjects", str(subjects), *SHAPES, "--json", "-q"]
    code, out, crop_err = run_cli(["crop", *common, "-o", str(tmp_path / "crop")])
    assert code == 1, crop_err  # the broken photos
    expected = _by_photo_and_shape(out)
    code, out, err = run_cli(["batch", *common, "-o", str(tmp_path / "batch"), "--actors", "2", "--batch-size", "2"])
    assert code == 1, err
    got = _by_photo_and_shape(out)
    # the same warnings and errors, one line each, whatever order the batches finished in
    said = {line.split(": ", 1)[1] for line in crop_err.splitlines() if ": warning: " in line or ": error: " in line}
    assert said and "enlarges the" in " ".join(said)
    assert {line.split(": ", 1)[1] for line in err.splitlines() if ": warning: " in line or ": error: " in line} == said
    assert set(got) == set(expected)
    errors = {photo for (photo, shape), r in expected.items() if "error" in r}
    assert errors == {str(folder / "broken.jpg"), str(folder / "truncated.jpg")}
    for key, want in expected.items():
        have = got[key]
        if "error" in want:
            assert have["error"] == want["error"]
            continue
        assert max(abs(a - b) for a, b in zip(have["crop"], want["crop"])) <= 0.5, key
        assert have["subject"] == want["subject"] and have["size"] == want["size"], key
        # the same file names, relative to -o, with the same pixels
        written = Path(have["output"]).relative_to(tmp_path / "batch")
        assert written == Path(want["output"]).relative_to(tmp_path / "crop"), key
        assert Image.open(have["output"]).size == Image.open(want["output"]).size
    assert len(expected) == 2 + 2 * (len(list(folder.iterdir())) - 2)  # every photo and shape compared
    assert "cropped, 2 failed" in err.splitlines()[-1]

    from gencrop.batch import read_results

    table = read_results(tmp_path / "batch").to_pylist()
    assert len(table) == len(expected)
    assert {(r["photo"], r["shape"]) for r in table} == set(expected)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_killed_job_loses_nothing_and_a_rerun_redoes_nothing(ray_cluster, photos, tmp_path):
    from gencrop.batch.catalogue import CropOptions, plan_batch, read_results, read_subjects
    from gencrop.batch.ray_job import CropPhotos, run_plan
    from gencrop.shapes import Shape

    folder, subjects = photos
    # the source as an object-store URI: listing, reading and writing go through pyarrow's file system
    source, out = f"file://{folder}", f"file://{tmp_path}/out"
    options = CropOptions(out=out, shapes=(Shape.parse("4:5"), Shape.parse("16:9")), write_crops=True)
    boxes = read_subjects(subjects)

    def plan():
        return plan_batch(source, options, subjects=boxes, subjects_name=str(subjects))

    class DiesAfterTwoBatches(CropPhotos):  # a job killed half-way, at the same point every time
        calls = 0

        def __call__(self, batch):
            self.calls += 1
            if self.calls > 2:
                raise RuntimeError("killed")
            return super().__call__(batch)

    first = plan()
    total = len(first.todo)
    with pytest.raises(Exception, match="killed"):
        run_plan(first, actors=1, batch_size=1, progress=False, actor_class=DiesAfterTwoBatches)
    parts = sorted((tmp_path / "out" / "results.parquet").glob("part-*.parquet"))
    assert len(parts) == 2  # the two finished batches, whole
    kept = {p: p.read_bytes() for p in parts}
    done_first = {r["photo"] for r in read_results(out).to_pylist()}
    assert len(done_first) == 2

    second = plan()
    assert second.done == 2 and len(second.todo) == total - 2
    assert not {item["photo"] for item in second.todo} & done_first
    summary = run_plan(second, actors=2, batch_size=2, progress=False)
    assert summary.cropped + summary.failed == total - 2
    assert all(p.read_bytes() == data for p, data in kept.items())  # nothing redone
    rows = read_results(out, options).to_pylist()
    assert sorted({r["photo"] for r in rows}) == sorted(f"{source}/{p.name}" for p in folder.iterdir())
    ok = [r for r in rows if r["error"] is None]
    assert len(ok) == 2 * (total - 2) and len(rows) == len(ok) + 2  # one row per shape; one per failure
    for r in ok:
        assert r["output"].startswith(f"{out}/") and Path(r["output"][len("file://") :]).is_file()
    assert plan().todo == []  # a third run has nothing to do


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_documented_local_run_runs_as_written(ray_cluster, tmp_path, monkeypatch):
    from test_docs_commands import fenced_blocks, gencrop_commands

    doc = REPO / "docs" / "scale.md"
    if not doc.is_file():  # tools/mutation_check.py runs the tests on a copy of src/ and tests/ only
        pytest.skip("no docs/ in this tree")
    command = gencrop_commands(fenced_blocks(doc, "bash")[0])[0]
    shown = fenced_blocks(doc, "")[0].strip().splitlines()  # the output printed under it
    (tmp_path / "src").symlink_to(REPO / "src")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(command)
    assert code == 0, err
    assert out.strip().splitlines() == [line for line in shown if not line.startswith("gencrop batch:")]
    assert shown[-1] in err.splitlines(), err  # the summary (Ray may log after it)
    for line in out.strip().splitlines():
        assert (tmp_path / line.split(" -> ")[1]).is_file()
