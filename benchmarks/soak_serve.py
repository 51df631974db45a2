"""A soak of `gencrop serve`: thousands of mixed requests, slow clients beside normal ones, memory over time.

    python benchmarks/soak_serve.py [--requests 5000] [--clients 8] [--auto 0.2] [--baseline 600]
                                    [--slow-clients 60] [--timeout 30] [--json out.json]

The server runs as its own process (`python -m gencrop serve` on 127.0.0.1, bundled model, its log
kept in a file); everything else is threads of this process, talking to 127.0.0.1 only:

* ``--clients`` normal clients, each with a keep-alive connection, send ``--requests`` requests in
  all: FCDB photos (the bundled example photo without the shared data), ``--auto`` of them without
  a subject (found automatically), the rest with a given one; one in four asks for the cropped
  JPEG, one in four for three shapes. Every 200 is checked (crop inside the photo, JPEG of the
  crop's size).
* The first ``--baseline`` requests run alone: their throughput is the baseline. Then
  ``--slow-clients`` clients start, each sending a request's headers and then its body at 2 bytes/s,
  reconnecting whenever the server ends the connection, until the normal requests are done.
* A probe asks ``/v1/health`` twice a second throughout.

It prints throughput (baseline, and beside the slow clients), latency percentiles, the statuses,
the health probe's latencies, how long the slow clients were held, the server's resident memory
after every 500 requests, and the 500s and tracebacks in the server's log. Targets (2-core CPU):
no 500 and no traceback; RSS after all requests within 10% of RSS after the first 500; health
within 100 ms while slow clients hold connections; normal clients keep >= 80% of their throughput;
every answer within --timeout + 0.5 s.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serve import free_port, percentile, pick_photos, rss_mib, wait_until_healthy  # noqa: E402

SLOW_RATE = 2  # bytes per second


def photo_size(path: Path) -> tuple[int, int]:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).size if im.getexif().get(0x0112, 1) > 1 else im.size


def request_for(i: int, photos: list[tuple[bytes, tuple[int, int]]], auto: float, rng: random.Random) -> dict:
    data, (w, h) = photos[i % len(photos)]
    params: dict = {}
    if rng.random() >= auto:
        # a subject somewhere in the photo, different every time
        sw, sh = rng.randint(w // 8, w // 2), rng.randint(h // 8, h // 2)
        params["subject"] = f"{rng.randint(0, w - sw)},{rng.randint(0, h - sh)},{sw},{sh}"
    kind = i % 4
    if kind == 1:
        params["output"] = "jpeg"
        params["aspect"] = "4:5"
    elif kind == 2:
        params["aspect"] = ["1:1", "16:9", "4:5"]
    return {"params": params, "data": data, "size": (w, h)}


def check(r, req: dict) -> str | None:
    """What is wrong with a 200, or None."""
    from PIL import Image

    w, h = req["size"]
    if req["params"].get("output") == "jpeg":
        x, y, cw, ch = (int(v) for v in r.headers["x-crop-box"].split(","))
        out = Image.open(io.BytesIO(r.content))
        if out.size != (cw, ch) or x < 0 or y < 0 or x + cw > w or y + ch > h:
            return f"image {out.size} for crop {x},{y},{cw},{ch} of {w}x{h}"
        return None
    body = r.json()
    for crop in body["crops"]:
        x, y, cw, ch = crop["box"]
        if x < 0 or y < 0 or x + cw > w + 0.01 or y + ch > h + 0.01 or cw <= 0 or ch <= 0:
            return f"crop {crop['box']} of {w}x{h}"
    return None


class Soak:
    def __init__(self, url: str, port: int, photos, args):
        self.url, self.port, self.photos, self.args = url, port, photos, args
        self.lock = threading.Lock()
        self.next_index = 0
        self.done = 0
        self.records: list[tuple[float, float, int]] = []  # (finished at, seconds, status)
        self.problems: list[str] = []
        self.rss: list[tuple[int, float]] = []
        self.slow_stop = threading.Event()
        self.slow_held: list[float] = []
        self.slow_answers: Counter = Counter()
        self.health: list[tuple[float, int]] = []

    # -- normal clients ---------------------------------------------------------------------------
    def client(self, seed: int, until: int) -> None:
        import httpx

        rng = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=self.args.timeout + 30) as c:
            while True:
                with self.lock:
                    i = self.next_index
                    if i >= until:
                        return
                    self.next_index += 1
                req = request_for(i, self.photos, self.args.auto, rng)
                t = time.perf_counter()
                try:
                    r = c.post(
                        "/v1/crop", params=req["params"], files={"photo": (f"p{i}.jpg", req["data"], "image/jpeg")}
                    )
                    status = r.status_code
                    problem = check(r, req) if status == 200 else None
                except Exception as e:  # noqa: BLE001 - a reset connection is a finding, not a crash
                    status, problem = 0, f"{type(e).__name__}: {e}"
                dt = time.perf_counter() - t
                with self.lock:
                    self.records.append((time.monotonic(), dt, status))
                    self.done += 1
                    if problem:
                        self.problems.append(f"request {i}: {problem}")
                    if self.done % 500 == 0:
                        self.rss.append((self.done, rss_mib(self.args.server_pid)))
                        print(f"  {self.done} answered; server RSS {self.rss[-1][1]:.0f} MiB", flush=True)

    def run_clients(self, until: int) -> float:
        threads = [
            threading.Thread(target=self.client, args=(1000 * until + n, until)) for n in range(self.args.clients)
        ]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return time.perf_counter() - t

    # -- slow clients -------------------------------------------------------------------------------
    def slow_client(self) -> None:
        # a well-formed start of an upload, then the photo's bytes at SLOW_RATE: held until the server ends it
        head = (
            f"POST /v1/crop HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "Content-Type: multipart/form-data; boundary=slow\r\nContent-Length: 100000\r\n\r\n"
            '--slow\r\nContent-Disposition: form-data; name="photo"; filename="slow.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        while not self.slow_stop.is_set():
            t = time.monotonic()
            answer = b""
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    s.sendall(head)
                    s.settimeout(1.0 / SLOW_RATE)
                    while not self.slow_stop.is_set():
                        try:
                            chunk = s.recv(4096)
                            if not chunk:
                                break
                            answer += chunk
                        except TimeoutError:
                            s.sendall(b"\xff")  # two bytes a second
            except OSError as e:
                answer = answer or f"{type(e).__name__}".encode()
            if self.slow_stop.is_set():
                return
            with self.lock:
                self.slow_held.append(time.monotonic() - t)
                self.slow_answers[answer.split(b"\r\n", 1)[0].decode(errors="replace")[:40] or "closed"] += 1

    # -- health probe -------------------------------------------------------------------------------
    def probe(self, stop: threading.Event) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=10) as c:
            while not stop.wait(0.5):
                t = time.perf_counter()
                try:
                    status = c.get("/v1/health").status_code
                except Exception:  # noqa: BLE001
                    status = 0
                with self.lock:
                    self.health.append((time.perf_counter() - t, status))


def summary(records, wall: float) -> dict:
    lat = [dt for _, dt, _ in records]
    return {
        "requests": len(records),
        "per_s": len(records) / wall,
        "p50_ms": percentile(lat, 0.5) * 1000,
        "p95_ms": percentile(lat, 0.95) * 1000,
        "p99_ms": percentile(lat, 0.99) * 1000,
        "max_ms": max(lat) * 1000,
        "statuses": dict(Counter(s for _, _, s in records)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--auto", type=float, default=0.2, help="share of requests without a subject")
    ap.add_argument("--baseline", type=int, default=600, help="requests run before the slow clients start")
    ap.add_argument("--slow-clients", type=int, default=60)
    ap.add_argument("--photos", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=30.0, help="the server's --timeout")
    ap.add_argument("--server-arg", action="append", default=[], help="one more argument for `gencrop serve`")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    paths = pick_photos(args.photos)
    photos = [(p.read_bytes(), photo_size(p)) for p in paths]
    print(f"{len(photos)} photos from {paths[0].parent}; {args.auto:.0%} automatic subjects", flush=True)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = tempfile.NamedTemporaryFile("w+", prefix="gencrop-soak-", suffix=".log", delete=False)
    server = subprocess.Popen(
        [sys.executable, "-m", "gencrop", "serve", "--port", str(port), "--log-level", "warning"]
        + ["--timeout", str(args.timeout), *args.server_arg],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    args.server_pid = server.pid
    figures: dict = {"requests": args.requests, "clients": args.clients, "auto": args.auto}
    try:
        wait_until_healthy(url, server, 300, log.name)
        figures["rss_ready_mib"] = rss_mib(server.pid)
        soak = Soak(url, port, photos, args)
        stop_probe = threading.Event()
        probe = threading.Thread(target=soak.probe, args=(stop_probe,))
        probe.start()

        baseline_wall = soak.run_clients(min(args.baseline, args.requests))
        baseline = summary(soak.records, baseline_wall)
        health_before = len(soak.health)
        slow = [threading.Thread(target=soak.slow_client) for _ in range(args.slow_clients)]
        for th in slow:
            th.start()
        time.sleep(2)  # the slow clients have connected
        start = len(soak.records)
        rest_wall = soak.run_clients(args.requests)
        beside_slow = summary(soak.records[start:], rest_wall)
        health_beside = soak.health[health_before:]
        soak.slow_stop.set()
        for th in slow:
            th.join(30)
        stop_probe.set()
        probe.join(30)
        time.sleep(1)
        figures["rss_idle_after_mib"] = rss_mib(server.pid)
        overall = summary(soak.records, baseline_wall + rest_wall)
    finally:
        server.terminate()
        server.wait(60)
    log.seek(0)
    server_log = log.read()
    tracebacks = server_log.count("Traceback")
    errors_500 = sum(1 for _, _, s in soak.records if s == 500)

    def show(name: str, s: dict) -> None:
        print(
            f"{name:<22} {s['requests']:>6} requests {s['per_s']:>6.1f}/s  p50 {s['p50_ms']:>6.0f} ms  "
            f"p95 {s['p95_ms']:>6.0f}  p99 {s['p99_ms']:>6.0f}  max {s['max_ms']:>6.0f}  statuses {s['statuses']}"
        )

    show("baseline (no slow)", baseline)
    show(f"beside {args.slow_clients} slow clients", beside_slow)
    show("all", overall)
    share = beside_slow["per_s"] / baseline["per_s"]
    print(f"throughput beside the slow clients: {share:.0%} of the baseline")
    h_lat = [dt * 1000 for dt, _ in health_beside] or [float("nan")]
    h_status = Counter(s for _, s in health_beside)
    print(
        f"/v1/health beside the slow clients: {len(h_lat)} probes, p50 {statistics.median(h_lat):.1f} ms, "
        f"p95 {percentile(h_lat, 0.95):.1f} ms, max {max(h_lat):.1f} ms, statuses {dict(h_status)}"
    )
    if soak.slow_held:
        print(
            f"slow clients: {len(soak.slow_held)} connections ended by the server, held "
            f"p50 {statistics.median(soak.slow_held):.1f} s, max {max(soak.slow_held):.1f} s; "
            f"answers {dict(soak.slow_answers)}"
        )
    print(f"server RSS: ready {figures['rss_ready_mib']:.0f} MiB; " + ", ".join(f"{n}: {m:.0f}" for n, m in soak.rss))
    print(f"server RSS idle after the soak: {figures['rss_idle_after_mib']:.0f} MiB")
    first = next((m for n, m in soak.rss if n >= 500), float("nan"))
    last = soak.rss[-1][1] if soak.rss else float("nan")
    print(f"RSS after all requests vs after 500: {last:.0f} / {first:.0f} MiB = {last / first - 1:+.1%}")
    print(f"status 500: {errors_500}; tracebacks in the server log: {tracebacks} ({log.name})")
    for p in soak.problems[:10]:
        print(f"  wrong answer: {p}")
    figures.update(
        baseline=baseline,
        beside_slow=beside_slow,
        overall=overall,
        share_beside_slow=share,
        health_ms={"p50": statistics.median(h_lat), "p95": percentile(h_lat, 0.95), "max": max(h_lat)},
        health_statuses=dict(h_status),
        slow_held_s=soak.slow_held,
        slow_answers=dict(soak.slow_answers),
        rss_mib=soak.rss,
        status_500=errors_500,
        tracebacks=tracebacks,
        wrong_answers=soak.problems,
    )
    if args.json:
        from gencrop.io import write_json

        write_json(args.json, figures)
    return 1 if errors_500 or tracebacks or soak.problems else 0


if __name__ == "__main__":
    sys.exit(main())
