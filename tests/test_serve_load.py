"""`gencrop serve` under load on loopback: 16 clients x 25 requests, good and bad mixed, every answer checked."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from gencrop.serve import ServeSettings, create_app  # noqa: E402

from serve_support import LiveServer, bundled_cropper, jpeg_bytes  # noqa: E402

CLIENTS = 16
REQUESTS_EACH = 25


@pytest.fixture(scope="module")
def photos(shared_dir, example_photo) -> list[bytes]:
    """Eight FCDB photos as their files' bytes; the bundled example photo when FCDB is absent."""
    folder = shared_dir / "data" / "fcdb" / "images"
    files = sorted(folder.glob("*.jpg"))[:8] if folder.is_dir() else []
    return [f.read_bytes() for f in files] or [example_photo.read_bytes()]


def request_mix(i: int, photos: list[bytes]) -> tuple[dict, bytes, int, str]:
    """Request ``i`` of the mix: (query, upload, expected status, kind)."""
    data = photos[i % len(photos)]
    subject = f"{10 + i},{20 + i % 7},120,90"  # unique per request: the answer must echo it
    kind = i % 6
    if kind in (0, 1, 2):
        return {"subject": subject}, data, 200, "json"
    if kind == 3:
        return {"subject": subject, "output": "jpeg"}, data, 200, "jpeg"
    if kind == 4 and i // 6 % 2:
        return {"subject": subject}, b"not a photo\n" * 50, 415, "bad-upload"
    if kind == 4:
        return {"subject": subject}, data[: len(data) // 3], 422, "bad-upload"
    return {"subject": "99999,0,10,10"}, data, 400, "bad-subject"


def run_client(url: str, client_id: int, photos: list[bytes]) -> list[tuple]:
    answers = []
    with httpx.Client(base_url=url, timeout=120) as c:
        for k in range(REQUESTS_EACH):
            i = client_id * REQUESTS_EACH + k
            params, data, status, kind = request_mix(i, photos)
            r = c.post("/v1/crop", params=params, files={"photo": (f"p{i}.jpg", data, "image/jpeg")})
            answers.append((i, kind, r, {"status": status, "params": params}))
    return answers


@pytest.mark.slow
def test_sixteen_clients_every_answer_right(photos):
    cropper = bundled_cropper()
    app = create_app(cropper, ServeSettings(queue_size=64, batch_size=8))
    with LiveServer(app) as server, ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(run_client, server.url, n, photos) for n in range(CLIENTS)]
        answers = [a for f in futures for a in f.result()]
        stats = app.state.queue.stats
        health = httpx.get(server.url + "/v1/health").json()

    assert sorted(i for i, *_ in answers) == list(range(CLIENTS * REQUESTS_EACH))
    for i, kind, r, want in answers:
        assert r.status_code == want["status"], (i, kind, r.text[:200])
        if kind == "json":
            body = r.json()
            assert body["subject"] == [float(v) for v in want["params"]["subject"].split(",")]
            x, y, w, h = body["crops"][0]["box"]
            width, height = body["size"]
            assert 0 <= x and 0 <= y and x + w <= width + 0.01 and y + h <= height + 0.01 and w > 0 and h > 0
        elif kind == "jpeg":
            assert r.headers["x-subject-box"] == want["params"]["subject"]
            crop = [int(v) for v in r.headers["x-crop-box"].split(",")]
            out = Image.open(io.BytesIO(r.content))
            assert out.format == "JPEG" and out.size == (crop[2], crop[3])
        else:
            body = r.json()
            assert body["status"] == want["status"] and body["error"]
    good = sum(1 for _, kind, *_ in answers if kind in ("json", "jpeg"))
    bad_subject = sum(1 for _, kind, *_ in answers if kind == "bad-subject")
    # every good photo reached the model exactly once; bad uploads and subjects outside the photo
    # are answered while the photo is prepared, before the model
    assert bad_subject > 0
    assert stats.submitted == stats.completed == good and stats.rejected == 0 and stats.expired == 0
    assert stats.largest_batch > 1  # concurrent requests were batched
    assert health["queued"] == 0
