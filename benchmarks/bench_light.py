"""The light runtime (onnxruntime, no torch) against PyTorch's and smartcrop, as a user runs them.

    python benchmarks/bench_light.py [--photo PHOTO.jpg] [--repeats 3] [--folder-size 64]
                                     [--light-python /tmp/light/bin/python] [--json out.json]

Prints, all measured in the same run:

* whole-process wall time and peak memory (the child's maximum resident set)
  of ``gencrop crop`` on one photo, given subject and automatic subject, with
  ``--runtime onnx`` and ``--runtime torch``, beside ``smartcroppy`` on the
  same photo (median of ``--repeats`` runs after one warm-up run);
  ``--light-python`` runs the onnx commands with another interpreter, e.g. a
  virtual environment with the plain install (no torch: its automatic subject
  is saliency only);
* photos per second on a folder of FCDB photos with given subjects, model
  loaded once, batches of 8, for both runtimes;
* the install size of the light install (the distributions ``pip install
  gencrop`` pulls in), with the saliency extra, and with the torch extra,
  summed from the installed files of this environment.

Targets (this 2-core CPU): light runtime, given subject <= 0.6 s and <= 250 MiB;
automatic subject <= 1.2 s; folder throughput of onnx >= torch's; light install
<= 400 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PHOTO = "6356033521_b93c3cf5d6_b.jpg"  # an FCDB test photo of 1024 x 744
_MEASURE = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter(); rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
    "stderr=subprocess.PIPE, text=True)\n"
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc.returncode)\n"
    "sys.stderr.write(rc.stderr)"
)


def shared_root() -> Path:
    return Path(os.environ.get("GENCROP_SHARED", REPO.parent / "shared"))


def whole_process(cmd: list[str], repeats: int) -> dict:
    """Median wall seconds and peak MiB of a command, each run in its own measuring process.

    This checkout's ``src`` is put on the path of this interpreter's commands only: another one (a
    plain install's venv) runs what it has installed, as its users do. (A source tree on a slow disk
    also costs every import a lookup there: 0.1 s of a one-photo run on this project's machines.)
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if cmd[0] == sys.executable:
        env["PYTHONPATH"] = str(REPO / "src")
    runs = []
    for i in range(repeats + 1):
        out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, env=env)
        seconds, rss_kb, rc = out.stdout.split()
        if int(rc) != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr.strip()[-500:]}")
        if i:  # the first run warms the file cache
            runs.append((float(seconds), int(rss_kb) / 1024))
    return {"wall_s": statistics.median(r[0] for r in runs), "peak_mib": statistics.median(r[1] for r in runs)}


def folder_throughput(runtime: str, photos: list[Path], subjects: list, threads: int | None) -> float:
    """Photos per second of Cropper.crop on a list of photos with given subjects (model loaded and warmed up first)."""
    from gencrop.inference import Cropper

    if runtime == "torch" and threads:
        import torch

        torch.set_num_threads(threads)
    cropper = Cropper.from_pretrained(runtime=runtime, device="cpu")
    list(cropper.crop(photos[:8], subjects[:8]))
    t = time.perf_counter()
    list(cropper.crop(photos, subjects, batch_size=8))
    return len(photos) / (time.perf_counter() - t)


def _requirement_names(dist: metadata.Distribution, extras: set[str]) -> list[str]:
    names = []
    for req in dist.requires or []:
        spec, _, marker = req.partition(";")
        m = re.search(r'extra\s*==\s*"([^"]+)"', marker)
        if m and m.group(1) not in extras:
            continue
        if not m and marker.strip() and "extra" in marker:
            continue
        name = re.split(r"[\s<>=!~\[(]", spec.strip(), maxsplit=1)[0]
        inner = re.search(r"\[([^\]]+)\]", spec)
        names.append((name, set(inner.group(1).split(",")) if inner else set()))
    return names


def install_size(extras: set[str]) -> tuple[float, list[str]]:
    """MB on disk of gencrop and every distribution it pulls in with ``extras`` (as installed here)."""
    seen: dict[str, set[str]] = {}
    todo = [("gencrop", extras)]
    total = 0
    while todo:
        name, want = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen and want <= seen[key]:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        first = key not in seen
        seen[key] = seen.get(key, set()) | want
        if first:
            for f in dist.files or []:
                path = Path(dist.locate_file(f))
                if path.is_file():
                    total += path.stat().st_size
        todo.extend(_requirement_names(dist, want))
    return total / 1e6, sorted(seen)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photo", help="photo for the whole-process runs (default: an FCDB test photo)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--folder-size", type=int, default=64, help="FCDB photos for the throughput figure")
    ap.add_argument("--threads", type=int, help="torch threads for the throughput figure (default: torch's)")
    ap.add_argument("--light-python", help="interpreter of a plain install (no torch) for the onnx commands")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    fcdb = shared_root() / "data" / "fcdb" / "images"
    photo = (
        Path(args.photo)
        if args.photo
        else (
            fcdb / DEFAULT_PHOTO
            if (fcdb / DEFAULT_PHOTO).is_file()
            else REPO / "src" / "gencrop" / "assets" / "astronaut.jpg"
        )
    )
    from PIL import Image

    w, h = Image.open(photo).size
    subject = f"{w // 4},{h // 4},{w // 2},{h // 2}"
    report: dict = {"photo": str(photo), "size": [w, h]}
    out = tempfile.mkdtemp(prefix="bench-light-")
    light = [args.light_python or sys.executable, "-m", "gencrop"]
    full = [sys.executable, "-m", "gencrop"]
    smartcroppy = Path(sys.executable).with_name("smartcroppy")
    runs = {
        "onnx, given subject": light + ["crop", str(photo), "--subject", subject, "--runtime", "onnx", "-o", out, "-q"],
        "onnx, automatic subject": light + ["crop", str(photo), "--runtime", "onnx", "-o", out, "-q"],
        "torch, given subject": full
        + ["crop", str(photo), "--subject", subject, "--runtime", "torch", "-o", out, "-q"],
        "torch, automatic subject": full + ["crop", str(photo), "--runtime", "torch", "-o", out, "-q"],
    }
    if smartcroppy.exists():
        runs["smartcroppy"] = [
            str(smartcroppy),
            "--width",
            str(w // 2),
            "--height",
            str(h // 2),
            str(photo),
            os.path.join(out, "smartcrop.jpg"),
        ]
    print(f"whole process, one {w}x{h} photo (median of {args.repeats}):")
    report["whole_process"] = {}
    for name, cmd in runs.items():
        try:
            r = whole_process(cmd, args.repeats)
        except RuntimeError as e:
            print(f"  {name:26s} failed: {e}")
            continue
        report["whole_process"][name] = r
        print(f"  {name:26s} {r['wall_s']:6.2f} s  {r['peak_mib']:6.0f} MiB")

    photos = sorted(fcdb.glob("*.jpg"))[: args.folder_size] if fcdb.is_dir() else []
    if photos:
        sizes = [Image.open(p).size for p in photos]
        subjects = [(pw / 4, ph / 4, pw / 2, ph / 2) for pw, ph in sizes]
        print(f"folder of {len(photos)} FCDB photos, given subjects, batches of 8:")
        report["photos_per_s"] = {}
        for runtime in ("onnx", "torch"):
            rate = folder_throughput(runtime, photos, subjects, args.threads)
            report["photos_per_s"][runtime] = rate
            print(f"  {runtime:6s} {rate:6.1f} photos/s")

    print("install size (distributions and their dependencies, as installed here):")
    report["install_mb"] = {}
    for label, extras in (
        ("light (pip install gencrop)", set()),
        ("light + saliency", {"saliency"}),
        ("with the torch runtime", {"torch"}),
    ):
        mb, dists = install_size(extras)
        report["install_mb"][label] = mb
        print(f"  {label:30s} {mb:7.0f} MB  ({len(dists)} distributions)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
