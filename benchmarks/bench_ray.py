"""`gencrop batch` on Ray with 1 and 2 actors beside `gencrop crop` on one process, on the same photos.

    python benchmarks/bench_ray.py [--photos 96] [--batch-size 8] [--find-subjects] [--json out.json]

Prints photos per second, all measured in this run, on the same photos (FCDB
photos from ``$GENCROP_SHARED``, else copies of the bundled example photo),
cropped to two shapes (1:1 and 1200x630) with the crops written:

* ``gencrop crop`` in this process (before Ray starts, and again at the end:
  the machine may be shared, the two runs show how much that moved);
* ``gencrop batch`` on a local Ray cluster of 2 CPUs: 1 actor with 1 CPU,
  1 actor with 2 CPUs, 2 actors with 1 CPU each. A job's time counts its
  actors' start (model load and warm-up), not the cluster's.

Beside each wall-clock rate it prints the CPU time per photo of the whole
process tree (this process, and Ray's daemons and workers), which a shared
machine disturbs much less: Ray's overhead shows there as the batch job's CPU
per photo above ``gencrop crop``'s.

Given subjects by default (an off-centre box per photo); ``--find-subjects``
finds them automatically instead.

Targets (this 2-core CPU): 2 actors >= 1.6 x 1 actor; 1 actor >= 90% of
``gencrop crop`` on one process.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
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


def tree_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and every process below it: Ray's daemons and workers
    when this process started the cluster, and (through their parents' counts) those that have exited.
    On a shared machine this moves less than wall time."""
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
        cpu[int(entry)] = sum(int(v) for v in fields[11:15]) / ticks  # utime, stime, cutime, cstime
    mine, changed = {os.getpid()}, True
    while changed:
        below = {pid for pid, parent in parents.items() if parent in mine} - mine
        changed = bool(below)
        mine |= below
    return sum(cpu.get(pid, 0.0) for pid in mine)


def timed_cli(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process tree) of one in-process command."""
    from gencrop.cli import main

    start, start_cpu = time.perf_counter(), tree_cpu_seconds()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    seconds, cpu = time.perf_counter() - start, tree_cpu_seconds() - start_cpu
    if code != 0:
        raise RuntimeError(f"gencrop {' '.join(argv)} exited {code}")
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--find-subjects", action="store_true", help="find subjects instead of giving them")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        folder = work / "photos"
        subjects = make_photos(folder, args.photos)
        common = [str(folder), "--aspect", "1:1", "--size", "1200x630", "-q", "--batch-size", str(args.batch_size)]
        if not args.find_subjects:
            common += ["--subjects", str(subjects)]
        figures: dict[str, float] = {}
        cpu_ms: dict[str, float] = {}

        def record(key: str, seconds: float, cpu: float) -> None:
            figures[key], cpu_ms[key] = args.photos / seconds, 1000 * cpu / args.photos
            print(
                f"{key:<28} {figures[key]:6.2f} photos/s  ({seconds:5.1f} s)   {cpu_ms[key]:6.0f} CPU ms/photo",
                flush=True,
            )

        def crop_once(key: str) -> None:
            record(key, *timed_cli(["crop", *common, "-o", str(work / key.replace(" ", "_"))]))

        timed_cli(["crop", str(folder / sorted(os.listdir(folder))[0]), "--no-write", "-q", "--subject", "1,1,5,5"])
        crop_once("gencrop crop (before)")

        import ray

        from gencrop.batch.ray_job import init_ray

        init_ray(None, num_cpus=2, object_store_memory=200 * 1024**2)
        for actors, cpus in ((1, 1), (1, 2), (2, 1)):
            key = f"batch {actors} actor(s) x {cpus} CPU"
            argv = ["batch", *common, "-o", str(work / key.replace(" ", "_"))]
            record(key, *timed_cli([*argv, "--actors", str(actors), "--cpus-per-actor", str(cpus)]))
        ray.shutdown()
        crop_once("gencrop crop (after)")

        crop = (figures["gencrop crop (before)"] + figures["gencrop crop (after)"]) / 2
        one = max(figures["batch 1 actor(s) x 1 CPU"], figures["batch 1 actor(s) x 2 CPU"])
        two = figures["batch 2 actor(s) x 1 CPU"]
        print(f"2 actors / best 1 actor: {two / one:.2f}x (target >= 1.6)")
        print(f"best 1 actor / gencrop crop: {one / crop:.0%} (target >= 90%)")
        crop_cpu = (cpu_ms["gencrop crop (before)"] + cpu_ms["gencrop crop (after)"]) / 2
        one_cpu = cpu_ms["batch 1 actor(s) x 1 CPU"]
        print(f"CPU per photo, 1 actor x 1 CPU / gencrop crop: {one_cpu / crop_cpu:.0%} (Ray's overhead in CPU time)")
        if args.json:
            Path(args.json).write_text(json.dumps({"photos_per_s": figures, "cpu_ms_per_photo": cpu_ms}, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
