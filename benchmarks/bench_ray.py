"""`gencrop batch` on Ray with 1 and 2 actors beside `gencrop crop` on one process, on the same photos.

    python benchmarks/bench_ray.py [--photos 96] [--batch-size 8] [--rounds 1] [--find-subjects] [--json out.json]

Prints photos per second, all measured in this run, on the same photos (FCDB
photos from ``$GENCROP_SHARED``, else copies of the bundled example photo),
cropped to two shapes (1:1 and 1200x630) with the crops written:

* ``gencrop crop`` in this process, before each round of Ray runs and once
  after the last (the machine may be shared: each Ray run is compared with
  the mean of the ``gencrop crop`` runs on either side of it);
* the same job on a local Ray cluster of 2 CPUs (``crop_catalogue``, what
  ``gencrop batch`` runs): 1 actor with 1 CPU, 1 actor with 2 CPUs, 2 actors
  with 1 CPU each. A job's time counts its actors' start (model load and
  warm-up), not the cluster's nor the helper actors Ray Data starts with the
  first job of a cluster (a one-photo job runs first).

Each row gives the whole job's rate and the steady rate: photos finished
after the first one (the first batch, on Ray) over the time from it to the
last, which leaves out imports, model loads and actor starts.

Beside each wall-clock rate it prints the CPU time per photo of everything
the job ran (this process, Ray's daemons, the actors' processes from their
start), which a shared machine disturbs much less than wall time: Ray's
overhead shows there as the batch job's CPU per photo above ``gencrop crop``'s.

``--rounds N`` repeats the Ray runs (each round on a fresh local cluster) and
prints the medians of the per-round ratios: on a shared machine one round can
be off by a third.

Given subjects by default (an off-centre box per photo); ``--find-subjects``
finds them automatically instead.

Targets (this 2-core CPU): 2 actors >= 1.6 x 1 actor; 1 actor >= 90% of
``gencrop crop`` on one process.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))


def make_photos(folder: Path, count: int) -> Path:
    """``count`` photos in ``folder`` and a subjects file beside it."""
    shared = Path(os.environ.get("GENCROP_SHARED", REPO.parent / "shared")) / "data" / "fcdb" / "images"
    folder.mkdir(parents=True)
    sources = sorted(shared.glob("*.jpg"))[:count] if shared.is_dir() else []
    example = REPO / "src" / "gencrop" / "assets" / "astronaut.jpg"
    for i in range(count):
        src = sources[i] if i < len(sources) else example
        shutil.copy(src, folder / f"{i:04d}_{src.name}")
    boxes = {}
    for p in sorted(folder.iterdir()):
        w, h = Image.open(p).size
        boxes[p.name] = [round(w * 0.55), round(h * 0.2), round(w * 0.25), round(h * 0.45)]
    subjects = folder.parent / "subjects.json"
    subjects.write_text(json.dumps(boxes))
    return subjects


def cpu_by_process() -> dict[int, float]:
    """CPU seconds (user + system) of this process and each live process below it (Ray's daemons and
    workers when this process started the cluster). On a shared machine this moves less than wall time."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    mine, changed = {os.getpid()}, True
    while changed:
        below = {pid for pid, parent in parents.items() if parent in mine} - mine
        changed = bool(below)
        mine |= below
    return {pid: cpu[pid] for pid in mine if pid in cpu}


def timed(run) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``run()``: this process and the processes below it, plus the CPU
    that crop actors report for themselves (they may exit before the end is measured)."""
    for report in REPORTS.glob("*.cpu"):
        report.unlink()
    start, start_cpu = time.perf_counter(), cpu_by_process()
    run()
    seconds, end_cpu = time.perf_counter() - start, cpu_by_process()
    actors = {int(r.stem): float(r.read_text()) for r in REPORTS.glob("*.cpu")}
    cpu = sum(v - start_cpu.get(pid, 0.0) for pid, v in end_cpu.items() if pid not in actors)
    return seconds, cpu + sum(actors.values())


REPORTS = Path(tempfile.mkdtemp(prefix="bench-ray-cpu-"))


def counted_actor():
    """CropPhotos that writes its process's CPU time after each batch (model load and warm-up included)."""
    from gencrop.batch.ray_job import CropPhotos

    reports = str(REPORTS)

    class CountedCropPhotos(CropPhotos):
        def __call__(self, batch):
            out = super().__call__(batch)
            Path(reports, f"{os.getpid()}.cpu").write_text(repr(time.process_time()))
            return out

    return CountedCropPhotos


def cli(argv: list[str]) -> None:
    from gencrop.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    if code != 0:
        raise RuntimeError(f"gencrop {' '.join(argv)} exited {code}")


class Marks:
    """When photos finished: the steady rate leaves out what comes before the first finished photo
    (imports, model loads, Ray's actors starting)."""

    def __init__(self):
        self.times: list[tuple[float, int]] = []

    def add(self, photos: int) -> None:
        done = self.times[-1][1] if self.times else 0
        self.times.append((time.perf_counter(), done + photos))

    def steady_rate(self) -> float:
        (t0, n0), (t1, n1) = self.times[0], self.times[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of all runs, interleaved (figures: medians)")
    parser.add_argument("--find-subjects", action="store_true", help="find subjects instead of giving them")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    import gencrop.crop_batch

    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    runs: dict[str, list[dict[str, float]]] = {}
    marks = Marks()

    def record(key: str, seconds: float, cpu: float) -> None:
        f = {
            "photos_per_s": args.photos / seconds,
            "steady_photos_per_s": marks.steady_rate(),
            "cpu_ms_per_photo": 1000 * cpu / args.photos,
        }
        runs.setdefault(key, []).append(f)
        print(
            f"{key:<26} {f['photos_per_s']:6.2f} photos/s ({seconds:5.1f} s)  steady {f['steady_photos_per_s']:6.2f}"
            f" photos/s  {f['cpu_ms_per_photo']:5.0f} CPU ms/photo",
            flush=True,
        )

    # gencrop crop, each batch of photos marked as it is cropped (its files are written next)
    crop_each = gencrop.crop_batch.crop_each

    def marked(cropper, prepare, items, *a, **k):
        out = crop_each(cropper, prepare, items, *a, **k)
        marks.add(len(items))
        return out

    try:
        folder = work / "photos"
        subjects = make_photos(folder, args.photos)
        common = [str(folder), "--aspect", "1:1", "--size", "1200x630", "-q", "--batch-size", str(args.batch_size)]
        if not args.find_subjects:
            common += ["--subjects", str(subjects)]

        def crop_once() -> None:
            marks.times.clear()
            gencrop.crop_batch.crop_each = marked
            try:
                out = work / f"crop-{len(runs.get(CROP, []))}"
                record(CROP, *timed(lambda: cli(["crop", *common, "-o", str(out)])))
            finally:
                gencrop.crop_batch.crop_each = crop_each

        cli(["crop", str(folder / sorted(os.listdir(folder))[0]), "--no-write", "-q", "--subject", "1,1,5,5"])
        import ray

        from gencrop.batch.ray_job import crop_catalogue, init_ray

        actor_class = counted_actor()

        def job(out: str, photos, actors: int, cpus: float) -> None:
            crop_catalogue(
                photos,
                out,
                shapes=["1:1", "1200x630"],
                subjects=None if args.find_subjects else str(subjects),
                actors=actors,
                cpus_per_actor=cpus,
                batch_size=args.batch_size,
                progress=False,
                actor_class=actor_class,
                on_rows=lambda rows: marks.add(len({r["photo"] for r in rows})),
            )

        # Each round: gencrop crop, then the Ray runs on a fresh cluster; gencrop crop once more at the
        # end, so that every Ray run has a gencrop crop run on each side (the machine may be shared).
        crop_once()
        for round_ in range(args.rounds):
            print(f"-- round {round_ + 1} of {args.rounds}", flush=True)
            init_ray(None, num_cpus=2, object_store_memory=200 * 1024**2)
            # Ray Data starts its own helper actors with the first job of a cluster: not counted
            job(str(work / f"warm-up-{round_}"), [str(sorted(folder.iterdir())[0])], 1, 1)
            for actors, cpus in RAY_RUNS:
                marks.times.clear()
                out = str(work / f"batch-{actors}x{cpus}-{round_}")
                record(ray_key(actors, cpus), *timed(functools.partial(job, out, str(folder), actors, cpus)))
            ray.shutdown()
            crop_once()

        figures = {key: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for key, rs in runs.items()}
        for rate in ("photos_per_s", "steady_photos_per_s"):
            # each round's Ray runs against the mean of the gencrop crop runs on either side of it
            crop = [(a[rate] + b[rate]) / 2 for a, b in zip(runs[CROP], runs[CROP][1:])]
            one, two = [r[rate] for r in runs[ray_key(1, 1)]], [r[rate] for r in runs[ray_key(2, 1)]]
            print(
                f"{rate}: 2 actors / 1 actor {statistics.median(b / a for a, b in zip(one, two)):.2f}x "
                f"(target >= 1.6); 1 actor / gencrop crop {statistics.median(a / c for a, c in zip(one, crop)):.0%}"
                f", 1 actor x 2 CPUs / gencrop crop "
                f"{statistics.median(r[rate] / c for r, c in zip(runs[ray_key(1, 2)], crop)):.0%} (target >= 90%)"
                + (f"  (medians of {args.rounds} rounds)" if args.rounds > 1 else "")
            )
        cpu_ratio = figures[ray_key(1, 1)]["cpu_ms_per_photo"] / figures[CROP]["cpu_ms_per_photo"]
        print(f"CPU per photo, 1 actor / gencrop crop: {cpu_ratio:.0%} (Ray's overhead in CPU time)")
        if args.json:
            Path(args.json).write_text(json.dumps({"medians": figures, "runs": runs}, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


CROP = "gencrop crop"
RAY_RUNS = ((1, 1), (1, 2), (2, 1))  # (actors, CPUs per actor)


def ray_key(actors: int, cpus: float) -> str:
    return f"batch {actors} actor(s) x {cpus} CPU"


if __name__ == "__main__":
    main()
