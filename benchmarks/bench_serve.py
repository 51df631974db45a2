"""`gencrop serve` under concurrency, beside `Cropper.crop` in-process on the same photos.

    python benchmarks/bench_serve.py [--photos 32] [--requests 96] [--clients 1 4 16] [--batch-size 8]
                                     [--output json|jpeg] [--aspect 1:1 --aspect 16:9 ...] [--find-subjects]
                                     [--memory-requests 2000] [--json out.json]

The server runs as its own process (`python -m gencrop serve` on 127.0.0.1, bundled model) and the
clients are threads of this process, each with its own keep-alive connection; every request sends a
photo's file with a given subject (the centre half of the photo; with ``--find-subjects`` none:
the server finds it, and so does ``Cropper.crop`` in-process). For each number of clients it
prints throughput (photos/s), p50/p95 latency and the share of the in-process throughput, measured
first in this process with the same photos and subjects (batch ``--batch-size``, the files decoded
by `Cropper.crop` itself). Both count the best of ``--repeats`` runs; a level sends at least 12
requests per client, so that every client is busy for most of the run. Every answer must be
200, or the run fails. ``--memory-requests N`` then sends N more requests at the highest
concurrency and prints the server's resident memory before and after.

Targets for `gencrop serve`: 16 clients with no failed answer and >= 80% of the in-process
throughput; one photo (given subject, JSON, warm server) <= 60 ms median on FCDB-size photos.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    return Path(os.environ.get("GENCROP_SHARED", REPO.parent / "shared"))


def pick_photos(n: int) -> list[Path]:
    fcdb = shared_root() / "data" / "fcdb" / "images"
    photos = sorted(fcdb.glob("*.jpg"))[:n] if fcdb.is_dir() else []
    return photos or [REPO / "src" / "gencrop" / "assets" / "astronaut.jpg"] * n


def centre_subject(path: Path) -> tuple[int, int, int, int]:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        w, h = ImageOps.exif_transpose(im).size if im.getexif().get(0x0112, 1) > 1 else im.size
    return (w // 4, h // 4, w // 2, h // 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_until_healthy(url: str, server: subprocess.Popen, timeout: float, log: str | None = None) -> None:
    """Poll ``url``/v1/health until it answers 200; exit when the server died or ``timeout`` seconds passed."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not start" + (f" (log: {log})" if log else ""))
        time.sleep(0.2)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def in_process(photos: list[Path], subjects: list, batch_size: int, repeats: int, aspects: list[str]) -> float:
    """Cropper.crop's throughput on the list of photos (with ``aspects``: several shapes each) in
    photos/s (best of ``repeats`` after a warm-up); the figure the server is compared with."""
    from gencrop import Cropper

    cropper = Cropper.from_pretrained(device="cpu")
    shapes = aspects or ["free"]
    list(cropper.crop(photos[:batch_size], subjects[:batch_size], shapes=shapes, batch_size=batch_size))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        list(cropper.crop(photos, subjects, shapes=shapes, batch_size=batch_size))
        best = min(best, time.perf_counter() - t)
    return len(photos) / best


def load(
    url: str, bodies: list[tuple[bytes, str]], clients: int, requests: int, output: str, aspects: list[str] = ()
) -> dict:
    """``requests`` requests spread over ``clients`` threads; latencies and failures."""
    import httpx

    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def client():
        with httpx.Client(base_url=url, timeout=120) as c:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                data, subject = bodies[i % len(bodies)]
                t = time.perf_counter()
                r = c.post(
                    "/v1/crop",
                    params={"output": output, "aspect": list(aspects)} | ({"subject": subject} if subject else {}),
                    files={"photo": ("p.jpg", data, "image/jpeg")},
                )
                dt = time.perf_counter() - t
                with lock:
                    latencies.append(dt)
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:120]}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "requests": requests,
        "answered": len(latencies),
        "failed": len(failures),
        "failures": failures[:5],
        "throughput": len(latencies) / wall,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=32)
    ap.add_argument(
        "--requests", type=int, default=96, help="requests per run of a concurrency level (at least 12 per client)"
    )
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--output", default="json", choices=["json", "jpeg"])
    ap.add_argument(
        "--aspect",
        action="append",
        default=[],
        help="ask every request for this shape (repeatable: several shapes per request, JSON output); "
        "default: the free crop",
    )
    ap.add_argument(
        "--repeats", type=int, default=3, help="runs of crop_many and of each client level (the best counts)"
    )
    ap.add_argument("--memory-requests", type=int, default=0)
    ap.add_argument("--find-subjects", action="store_true", help="send no subject: the server finds each one")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    photos = pick_photos(args.photos)
    subjects = [None if args.find_subjects else centre_subject(p) for p in photos]
    bodies = [(p.read_bytes(), ",".join(map(str, s)) if s else "") for p, s in zip(photos, subjects)]
    print(
        f"{len(photos)} photos from {photos[0].parent}, "
        f"{'subjects found automatically' if args.find_subjects else 'given subjects'}",
        flush=True,
    )

    reference = in_process(photos, subjects, args.batch_size, args.repeats, args.aspect)
    print(f"Cropper.crop in-process (batch {args.batch_size}): {reference:.1f} photos/s", flush=True)

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gencrop",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--batch-size",
            str(args.batch_size),
            "--queue-size",
            "256",
            "--max-in-flight",
            "512",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    figures = {
        "photos": len(photos),
        "find_subjects": args.find_subjects,
        "crop_many_photos_per_s": reference,
        "levels": [],
    }
    try:
        wait_until_healthy(url, server, 180)
        load(url, bodies, max(args.clients), min(32, args.requests), args.output, args.aspect)  # warm-up
        print(f"{'clients':>7} {'photos/s':>9} {'vs crop_many':>12} {'p50 ms':>8} {'p95 ms':>8} {'failed':>6}")
        for clients in args.clients:
            # measured like crop_many: the best of --repeats runs, each long enough for every client
            runs = [
                load(url, bodies, clients, max(args.requests, 12 * clients), args.output, args.aspect)
                for _ in range(args.repeats)
            ]
            r = max(runs, key=lambda run: run["throughput"])
            r["failed"] = sum(run["failed"] for run in runs)
            r["failures"] = [f for run in runs for f in run["failures"]][:5]
            r["share_of_crop_many"] = r["throughput"] / reference
            figures["levels"].append(r)
            print(
                f"{clients:>7} {r['throughput']:>9.1f} {r['share_of_crop_many']:>11.0%} {r['p50_ms']:>8.1f} "
                f"{r['p95_ms']:>8.1f} {r['failed']:>6}",
                flush=True,
            )
            for f in r["failures"]:
                print(f"        failure: {f}")
        if args.memory_requests:
            before = rss_mib(server.pid)
            r = load(url, bodies, max(args.clients), args.memory_requests, args.output, args.aspect)
            after = rss_mib(server.pid)
            figures["memory"] = {
                "requests": args.memory_requests,
                "rss_before_mib": before,
                "rss_after_mib": after,
                "failed": r["failed"],
            }
            print(
                f"memory: {args.memory_requests} more requests ({r['failed']} failed): server RSS "
                f"{before:.0f} MiB -> {after:.0f} MiB",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(30)
    if args.json:
        from gencrop.io import write_json

        write_json(args.json, figures)
    return 1 if any(level["failed"] for level in figures["levels"]) else 0


if __name__ == "__main__":
    sys.exit(main())
