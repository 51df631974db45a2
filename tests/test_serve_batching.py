"""The server's building blocks: the batching queue and request limits (no model), upload decoding."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

pytest.importorskip("fastapi")

from gencrop.serve.batching import BatchQueue, DeadlinePassed, QueueClosed, QueueFull  # noqa: E402
from gencrop.serve.errors import ApiError  # noqa: E402
from gencrop.serve.limits import RequestLimits  # noqa: E402
from gencrop.serve.uploads import check_upload, prepare_upload  # noqa: E402

from serve_support import bundled_cropper, jpeg_bytes, png_bomb, rotated_jpeg, sixteen_bit_png  # noqa: E402


class Gate:
    """A batch process that records its batches and can be held shut."""

    def __init__(self, fail_on=None):
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Event()
        self.batches: list[list] = []
        self.fail_on = fail_on

    def __call__(self, payloads):
        self.entered.set()
        self.open.wait(10)
        self.batches.append(list(payloads))
        return [ValueError(f"bad {p}") if p == self.fail_on else p * 10 for p in payloads]


def test_queue_batches_waiting_items_and_answers_each_once():
    gate = Gate()
    gate.open.clear()
    q = BatchQueue(gate, capacity=16, max_batch=4, max_wait=0.0)
    try:
        first = q.submit(0)
        assert gate.entered.wait(5)  # the worker holds item 0; the rest pile up
        futures = [q.submit(i) for i in range(1, 10)]
        gate.open.set()
        results = [f.result(10) for f in [first, *futures]]
    finally:
        q.close()
    assert [r for r, _ in results] == [i * 10 for i in range(10)]
    assert [len(b) for b in gate.batches] == [1, 4, 4, 1]
    assert sorted(p for b in gate.batches for p in b) == list(range(10))  # each item run exactly once
    assert results[2][1].batch_size == 4 and results[2][1].queued_s >= 0
    assert q.stats.completed == 10 and q.stats.largest_batch == 4


def test_queue_patience_gathers_a_batch_for_a_few_milliseconds():
    gate = Gate()
    q = BatchQueue(gate, capacity=16, max_batch=8, max_wait=0.5)
    try:
        futures = [q.submit(i) for i in range(3)]  # arrive within the first item's patience
        for f in futures:
            f.result(10)
    finally:
        q.close()
    assert [len(b) for b in gate.batches] == [3]


def test_full_queue_refuses_at_once_and_keeps_serving():
    gate = Gate()
    gate.open.clear()
    q = BatchQueue(gate, capacity=2, max_batch=1, max_wait=0.0)
    try:
        running = q.submit(1)
        assert gate.entered.wait(5)
        waiting = [q.submit(2), q.submit(3)]
        with pytest.raises(QueueFull):
            q.submit(4)
        assert q.stats.rejected == 1
        gate.open.set()
        assert [f.result(10)[0] for f in [running, *waiting]] == [10, 20, 30]
        assert q.submit(5).result(10)[0] == 50
    finally:
        q.close()


def test_one_bad_item_fails_alone_and_a_crashing_batch_fails_all_of_it():
    gate = Gate(fail_on=2)
    q = BatchQueue(gate, capacity=8, max_batch=8, max_wait=0.2)
    try:
        futures = [q.submit(i) for i in range(4)]
        with pytest.raises(ValueError, match="bad 2"):
            futures[2].result(10)
        assert [futures[i].result(10)[0] for i in (0, 1, 3)] == [0, 10, 30]
    finally:
        q.close()

    def crash(payloads):
        raise RuntimeError("model exploded")

    q = BatchQueue(crash, capacity=8, max_batch=8, max_wait=0.0)
    try:
        with pytest.raises(RuntimeError, match="exploded"):
            q.submit(1).result(10)
    finally:
        q.close()


def test_cancelled_and_expired_items_are_not_run():
    gate = Gate()
    gate.open.clear()
    q = BatchQueue(gate, capacity=8, max_batch=8, max_wait=0.0)
    try:
        q.submit(0)
        assert gate.entered.wait(5)
        gone = q.submit(1)
        expired = q.submit(2, deadline=time.monotonic() - 1)
        kept = q.submit(3)
        assert gone.cancel()
        gate.open.set()
        assert kept.result(10)[0] == 30
        with pytest.raises(DeadlinePassed):
            expired.result(10)
    finally:
        q.close()
    assert all(1 not in b and 2 not in b for b in gate.batches)
    with pytest.raises(QueueClosed):
        q.submit(9)


# -- request limits (ASGI middleware) ----------------------------------------------------
def _call(app, path="/v1/crop", body=b"", headers=()):
    """Run one ASGI request through ``app``; returns (status, headers, body)."""
    sent = []
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]

    async def receive():
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": path, "method": "POST", "headers": list(headers)}
    return scope, receive, send, sent


def _status(sent):
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), json.loads(body) if body else None


def test_request_limits_refuse_large_bodies_and_close_after_an_unread_body():
    async def read_all(scope, receive, send):
        while True:  # read the whole body, as a framework would
            message = await receive()
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def read_none(scope, receive, send):  # answers before the body is read (a refusal)
        await send({"type": "http.response.start", "status": 503, "headers": [(b"retry-after", b"1")]})
        await send({"type": "http.response.body", "body": b"{}"})

    async def scenario():
        limits = RequestLimits(read_all, max_body=5000)

        # declared too large: refused from the header, nothing read, the connection ends
        scope, receive, send, sent = _call(limits, body=b"x" * 6000, headers=[(b"content-length", b"6000")])
        await limits(scope, receive, send)
        status, headers, _ = _status(sent)
        assert status == 413 and headers[b"connection"] == b"close"

        # no Content-Length, body grows past the limit while read
        scope, receive, send, sent = _call(limits, body=b"x" * 6000)
        await limits(scope, receive, send)
        status, headers, body = _status(sent)
        assert status == 413 and "MiB" in body["error"] and headers[b"connection"] == b"close"

        # a body read to its end: the connection stays open
        scope, receive, send, sent = _call(limits, body=b"x" * 3000, headers=[(b"content-length", b"3000")])
        await limits(scope, receive, send)
        status, headers, _ = _status(sent)
        assert status == 200 and b"connection" not in headers

        # an answer that leaves the body unread closes the connection
        unread = RequestLimits(read_none, max_body=5000)
        scope, receive, send, sent = _call(unread, body=b"x" * 3000, headers=[(b"content-length", b"3000")])
        await unread(scope, receive, send)
        status, headers, _ = _status(sent)
        assert status == 503 and headers[b"connection"] == b"close" and headers[b"retry-after"] == b"1"

        # the page and static files have no upload limit
        scope, receive, send, sent = _call(limits, path="/", body=b"x" * 6000, headers=[(b"content-length", b"6000")])
        await limits(scope, receive, send)
        assert _status(sent)[0] == 200

    asyncio.run(scenario())


# -- decoding uploads -----------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decode_refuses_a_png_bomb_before_decoding(monkeypatch):
    def no_decode(self):
        raise AssertionError("the bomb's pixels were decoded")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decode)
    bomb = png_bomb()
    assert len(bomb) < 200_000
    for decode in (
        lambda: check_upload(bomb, max_pixels=50_000_000),
        lambda: prepare_upload(bundled_cropper(), bomb, (0, 0, 10, 10), full=True, max_pixels=50_000_000),
    ):
        with pytest.raises(ApiError) as e:
            decode()
        assert e.value.status == 413 and "20000x20000" in e.value.message


@pytest.mark.parametrize(
    "data, status, words",
    [
        (b"", 422, "empty"),
        (b"just some text, not a photo\n" * 20, 415, "not a photo"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, 415, "not a photo"),  # a PNG signature, no valid header
    ],
)
def test_decode_errors(data, status, words):
    with pytest.raises(ApiError) as e:
        check_upload(data, max_pixels=10**7, min_side=16)
    assert e.value.status == status and words in e.value.message


def test_decode_converts_like_files(example_photo):
    cropper = bundled_cropper()
    photo = Image.open(example_photo).convert("RGB")
    subject = (10, 10, 50, 50)

    def full(data):
        return prepare_upload(cropper, data, subject, full=True, max_pixels=10**7)[1]

    deep = sixteen_bit_png(photo)
    assert Image.open(io.BytesIO(deep)).mode == "I;16"
    assert full(deep).mode == "RGB"
    assert full(rotated_jpeg(photo)).size == photo.size
    cmyk = full(jpeg_bytes(photo.convert("CMYK")))
    assert cmyk.mode == "RGB" and cmyk.size == photo.size
    with pytest.raises(ApiError) as e:
        prepare_upload(cropper, jpeg_bytes(photo.resize((1, 1))), None, full=False, max_pixels=10**7, min_side=16)
    assert e.value.status == 422 and "1x1" in e.value.message


def test_upload_prepared_exactly_as_the_file_on_disk(tmp_path, example_photo):
    """An upload gives the network the input the same file gives it from disk: a large JPEG is
    decoded at reduced size (DCT scaling) for the network, and in full only when the crop is cut."""
    cropper = bundled_cropper()
    big = Image.open(example_photo).convert("RGB").resize((2400, 1800))  # 1/4 decode for a 256 px input
    data = jpeg_bytes(big)
    path = tmp_path / "big.jpg"
    path.write_bytes(data)
    subject = (900, 500, 600, 700)
    on_disk = cropper.prepare(path, subject)
    json_only, no_full = prepare_upload(cropper, data, subject, full=False, max_pixels=10**7)
    with_full, full = prepare_upload(cropper, data, subject, full=True, max_pixels=10**7)
    assert no_full is None and full.size == (2400, 1800)
    assert on_disk.image.size == (600, 450)  # the reduced decode, not a reduction of the full one
    for p in (json_only, with_full):
        assert p.size == (2400, 1800) and p.subject.xywh == on_disk.subject.xywh
        np.testing.assert_array_equal(p.array, on_disk.array)
    assert cropper.crop(json_only).box == cropper.crop(path, subject).box


def test_upload_subject_errors_are_the_requests():
    cropper = bundled_cropper()
    data = jpeg_bytes(Image.new("RGB", (300, 200), (40, 90, 140)))
    with pytest.raises(ApiError) as e:
        prepare_upload(cropper, data, (400, 10, 20, 20), full=False, max_pixels=10**7)
    assert e.value.status == 400 and "outside" in e.value.message
    truncated = jpeg_bytes(Image.effect_noise((600, 400), 60).convert("RGB"))[:3000]
    with pytest.raises(ApiError) as e:
        prepare_upload(cropper, truncated, (10, 10, 20, 20), full=False, max_pixels=10**7)
    assert e.value.status == 422 and "uploaded JPEG photo" in e.value.message


def test_serve_command_refuses_bad_limits_before_loading_a_model(capsys):
    from gencrop.cli import main

    assert main(["serve", "--queue-size", "0"]) == 2
    assert "queue_size must be at least 1" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


# -- the model worker ---------------------------------------------------------------------------
class CountingNetwork:
    """A runtime network that counts its passes and the rows of each."""

    def __init__(self, network):
        self.network, self.runtime, self.info, self.rows = network, network.runtime, network.info, []

    def __call__(self, images, subjects, shapes=None):
        self.rows.append(len(images))
        return self.network(images, subjects, shapes)


def test_worker_runs_requests_with_the_same_shapes_in_one_pass(example_photo):
    from gencrop.inference import Cropper
    from gencrop.serve.jobs import CropJob, CropWorker
    from gencrop.shapes import Shape

    real = bundled_cropper()
    counting = CountingNetwork(real.network)
    cropper = Cropper(counting)
    photo = Image.open(example_photo).convert("RGB")
    subjects = [(20, 30, 200, 300), (250, 40, 200, 200), (100, 100, 150, 150)]
    several = (Shape.parse("1:1"), Shape.parse("16:9"), Shape.parse("1200x630"))
    jobs = [CropJob(cropper.prepare(photo, s), several) for s in subjects]
    jobs.append(CropJob(cropper.prepare(photo, subjects[0]), (Shape(),)))  # the free crop: a group of its own
    torch = pytest.importorskip("torch")
    from gencrop.modeling import GenCrop, GenCropConfig

    torch.manual_seed(0)
    other = Cropper(GenCrop(GenCropConfig(arch="mobilenetv2_100", image_size=64, in_channels=3)))
    wrong = other.prepare(photo, subjects[0])  # prepared for another model
    jobs.append(CropJob(wrong, several))

    results = CropWorker(cropper)(jobs)

    # the three good multi-shape jobs and the bad one share a pass that fails; then each runs alone
    assert isinstance(results[4], ValueError) and "another model" in str(results[4])
    for subject, crops in zip(subjects, results[:3]):
        expected = real.crop(photo, subject, shapes=["1:1", "16:9", "1200x630"])
        assert [c.box for c in crops] == [e.box for e in expected]
    assert [c.box for c in results[3]] == [real.crop(photo, subjects[0]).box]
    assert results[3][0].shape is None

    counting.rows.clear()
    results = CropWorker(cropper)(jobs[:4])
    assert sorted(counting.rows) == [1, 3]  # one pass for the three photos' nine crops, one for the free crop


def test_warm_up_finds_a_subject_with_and_without_a_face_and_never_fails():
    from gencrop.geometry import Box
    from gencrop.inference import Cropper
    from gencrop.serve import warm_up
    from gencrop.serve.app import EXAMPLE_PHOTO
    from gencrop.subject import Subject, SubjectNotFound

    network = bundled_cropper().network
    calls = []

    def finder(img, size):
        calls.append(size)
        return Subject(box=Box(10, 10, 100, 100), mask=None, source="saliency")

    assert warm_up(Cropper(network, subject_finder=finder)) == "subjects are found automatically (saliency)"
    # the example photo (a face), then a faceless one: the default finder's saliency fallback loads too
    assert calls == [Image.open(EXAMPLE_PHOTO).size, (160, 120)]

    def nothing(img, size):
        raise SubjectNotFound("nothing stands out")

    assert "must give their subject" in warm_up(Cropper(network, subject_finder=nothing))
