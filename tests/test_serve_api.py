"""The HTTP API of `gencrop serve` on real photos: answers, every documented error status, limits, access."""

from __future__ import annotations

import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from gencrop.serve import ServeSettings, create_app  # noqa: E402
from gencrop.serve.model_info import describe_model  # noqa: E402

from serve_support import (  # noqa: E402
    LiveServer,
    jpeg_bytes,
    png_bomb,
    png_bytes,
    rotated_jpeg,
    sixteen_bit_png,
    warmed_cropper,
)

FCDB_PHOTO = "6356033521_b93c3cf5d6_b.jpg"  # 1024 x 744
SUBJECT = (300, 200, 300, 300)


@pytest.fixture(scope="module")
def cropper():
    return warmed_cropper()


@pytest.fixture(scope="module")
def client(cropper):
    from gencrop.runtime.files import resolve_model_dir

    app = create_app(
        cropper,
        ServeSettings(max_upload_bytes=3 * 2**20),
        model_info=describe_model(resolve_model_dir(None), cropper.dim),
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def photo(example_photo) -> Image.Image:
    return Image.open(example_photo).convert("RGB")


@pytest.fixture(scope="module")
def fcdb_bytes(shared_data) -> bytes:
    path = shared_data / "fcdb" / "images" / FCDB_PHOTO
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path.read_bytes()


def post(client, data: bytes, params=None, name="photo.jpg", **kwargs):
    return client.post("/v1/crop", params=params or {}, files={"photo": (name, data, "image/jpeg")}, **kwargs)


def assert_error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and isinstance(body["error"], str) and body["error"]
    return body["error"]


def subject_param(box=SUBJECT):
    return ",".join(str(v) for v in box)


# -- answers ---------------------------------------------------------------------------------
def test_health_and_model(client):
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["queue_size"] == 32
    model = client.get("/v1/model").json()
    assert model["name"] == "gencrop-default" and model["input_size"] == 256
    assert model["variant"] == "gencrop" and "research" in model["licence"]


def test_json_crop_matches_the_cropper_on_an_fcdb_photo(client, cropper, fcdb_bytes):
    r = post(client, fcdb_bytes, {"subject": subject_param()})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = cropper.crop(Image.open(io.BytesIO(fcdb_bytes)), subject=SUBJECT)
    assert body["size"] == [1024, 744]
    assert body["subject"] == list(SUBJECT) and body["subject_source"] == "given"
    assert body["crops"][0]["shape"] == "free"
    assert body["crops"][0]["box"] == pytest.approx(list(expected.box.xywh), abs=0.01)
    assert set(body["timings"]) >= {"prepare_ms", "queue_ms", "model_ms", "total_ms", "batch_size"}
    assert "heatmap" not in body


def test_heatmap_is_a_png_over_the_photo(client, photo):
    r = post(client, jpeg_bytes(photo), {"subject": "100,50,250,400", "heatmap": "true"})
    heat = r.json()["heatmap"]
    assert heat["image"].startswith("data:image/png;base64,")
    x, y, w, h = heat["box"]
    assert x <= 0 and y <= 0 and x + w >= photo.width and y + h >= photo.height


@pytest.mark.parametrize("output, fmt", [("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")])
def test_image_output_is_the_crop(client, photo, output, fmt):
    data = jpeg_bytes(photo)
    box = post(client, data, {"subject": "100,50,250,400"}).json()["crops"][0]["box"]
    r = post(client, data, {"subject": "100,50,250,400", "output": output}, name="astronaut.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == f"image/{output}"
    out = Image.open(io.BytesIO(r.content))
    assert out.format == fmt
    cut = [int(v) for v in r.headers["x-crop-box"].split(",")]
    assert out.size == (cut[2], cut[3])
    assert cut == pytest.approx(box, abs=1)
    assert "astronaut_free" in r.headers["content-disposition"]


def test_shapes(client, fcdb_bytes):
    pytest.importorskip("gencrop.shapes")
    r = post(client, fcdb_bytes, {"subject": subject_param(), "aspect": ["1:1", "16:9", "free"], "heatmap": "true"})
    assert r.status_code == 200, r.text
    crops = {c["shape"]: c for c in r.json()["crops"]}
    assert list(crops) == ["1x1", "16x9", "free"]
    for name, ratio in (("1x1", 1.0), ("16x9", 16 / 9)):
        x, y, w, h = crops[name]["box"]
        assert w / h == pytest.approx(ratio, abs=0.02)
        assert (
            x <= SUBJECT[0]
            and y <= SUBJECT[1]
            and x + w >= SUBJECT[0] + SUBJECT[2]
            and y + h >= SUBJECT[1] + SUBJECT[3]
        )
        assert 0 <= x and 0 <= y and x + w <= 1024 and y + h <= 744
    sized = post(client, fcdb_bytes, {"subject": subject_param(), "size": "300x200", "output": "jpeg"})
    assert sized.status_code == 200, sized.text
    assert Image.open(io.BytesIO(sized.content)).size == (300, 200)


def test_automatic_subject(client, photo):
    pytest.importorskip("gencrop.subject")
    r = post(client, jpeg_bytes(photo))
    if r.status_code == 422:  # no subject backend installed: the documented answer
        assert "subject" in r.json()["error"]
        return
    body = r.json()
    assert r.status_code == 200 and body["subject_source"] in ("segmentation", "face", "saliency", "detection")


# -- awkward but valid photos ---------------------------------------------------------------------
def test_sixteen_bit_png(client, photo):
    r = post(client, sixteen_bit_png(photo), {"subject": "100,50,250,400"}, name="deep.png")
    assert r.status_code == 200, r.text
    assert r.json()["size"] == [photo.width, photo.height]


def test_cmyk_jpeg(client, photo):
    r = post(client, jpeg_bytes(photo.convert("CMYK")), {"subject": "100,50,250,400"})
    assert r.status_code == 200, r.text
    assert r.json()["size"] == [photo.width, photo.height]


def test_exif_rotation_gives_the_upright_photo_crop(client, fcdb_bytes):
    upright = Image.open(io.BytesIO(fcdb_bytes)).convert("RGB")
    straight = post(client, jpeg_bytes(upright), {"subject": subject_param()}).json()
    turned = post(client, rotated_jpeg(upright), {"subject": subject_param()}).json()
    assert turned["size"] == straight["size"] == [1024, 744]
    # the same picture, stored sideways: the same crop up to JPEG re-encoding noise
    assert turned["crops"][0]["box"] == pytest.approx(straight["crops"][0]["box"], abs=6)


# -- bad requests: documented status, JSON message, and the server keeps serving --------------------------
def test_bad_fields_are_400(client, photo):
    data = jpeg_bytes(photo)
    assert "photo" in assert_error(client.post("/v1/crop"), 400)
    assert "subject" in assert_error(post(client, data, {"subject": "1,2,3"}), 400)
    assert "outside" in assert_error(post(client, data, {"subject": "5000,5000,10,10"}), 400)
    assert "output" in assert_error(post(client, data, {"output": "gif"}), 400)
    assert "quality" in assert_error(post(client, data, {"quality": "0"}), 400)
    assert "area" in assert_error(post(client, data, {"area": "1.5"}), 400)


def test_bad_shapes_are_400(client, photo):
    pytest.importorskip("gencrop.shapes")
    data = jpeg_bytes(photo)
    assert "aspect" in assert_error(post(client, data, {"aspect": "wide", "subject": "100,50,250,400"}), 400)
    assert "one crop" in assert_error(post(client, data, {"aspect": ["1:1", "4:5"], "output": "jpeg"}), 400)


def test_not_a_photo_is_415(client):
    msg = assert_error(post(client, b"name,crop\nphoto.jpg,1 2 3 4\n" * 10, name="notes.txt"), 415)
    assert "JPEG" in msg


def test_truncated_jpeg_is_422(client, fcdb_bytes):
    assert "truncated" in assert_error(post(client, fcdb_bytes[: len(fcdb_bytes) // 2]), 422)


def test_empty_and_tiny_photos_are_422(client, photo):
    assert_error(post(client, b""), 422)
    assert "1x1" in assert_error(post(client, png_bytes(photo.resize((1, 1))), {"subject": "0,0,1,1"}), 422)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_png_bomb_is_413(client):
    assert "megapixels" in assert_error(post(client, png_bomb(), name="bomb.png"), 413)


def test_too_large_upload_is_413(client):
    assert "MiB" in assert_error(post(client, b"\xff" * (4 * 2**20)), 413)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_server_keeps_serving_after_bad_requests(client, photo):
    for data in (b"", b"text", png_bomb()):
        assert post(client, data).status_code in (413, 415, 422)
    r = post(client, jpeg_bytes(photo), {"subject": "100,50,250,400"})
    assert r.status_code == 200 and client.get("/v1/health").json()["status"] == "ok"


def _odd_photos(photo: Image.Image) -> dict[str, bytes]:
    """The same photo in the formats and pixel modes browsers, cameras and scanners produce."""
    small = photo.resize((240, 200))
    out = {}
    for mode in ("RGB", "RGBA", "L", "LA", "P", "1", "I", "F", "CMYK", "YCbCr"):
        for fmt in ("PNG", "TIFF", "WEBP", "BMP", "GIF", "JPEG"):
            img = small.convert(mode)
            buf = io.BytesIO()
            try:
                img.save(buf, format=fmt)
            except (OSError, ValueError, KeyError):
                continue  # this format cannot hold this mode
            out[f"{mode}.{fmt.lower()}"] = buf.getvalue()
    frames = [small.rotate(a).convert("P") for a in (0, 10, 20)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    out["animated.gif"] = buf.getvalue()
    buf = io.BytesIO()
    small.save(buf, format="JPEG", progressive=True, quality=80)
    out["progressive.jpg"] = buf.getvalue()
    return out


def test_every_format_and_mode_is_answered(client, photo):
    """Photos in every mode a format can store are cropped (200, the right size), or refused with a
    documented status; nothing is a server error."""
    odd = _odd_photos(photo)
    assert len(odd) > 30
    cropped = 0
    for name, data in odd.items():
        r = post(client, data, {"subject": "20,20,100,120", "aspect": "4:5"}, name=name)
        if r.status_code == 200:
            cropped += 1
            body = r.json()
            assert body["size"] == [240, 200], name
            x, y, w, h = body["crops"][0]["box"]
            assert abs(w / h - 0.8) < 0.01 and x + w <= 240 and y + h <= 200, name
        else:
            assert_error(r, r.status_code)
            assert r.status_code in (415, 422), (name, r.text)
    assert cropped >= len(odd) - 2  # every readable combination crops (PIL may write one it cannot read back)


def test_corrupted_uploads_never_break_the_server(client, photo):
    """Seeded corruptions of JPEG and PNG files of a real photo: flipped bytes, cuts, spliced headers. Every answer
    is a crop or a documented JSON error, and the server keeps serving."""
    import random

    rng = random.Random(13)
    sources = [jpeg_bytes(photo), png_bytes(photo.resize((300, 240))), jpeg_bytes(photo.resize((300, 240)))]
    seen = set()
    for i in range(60):
        data = bytearray(rng.choice(sources))
        kind = i % 4
        if kind == 0:  # flip bytes after the first few
            for _ in range(rng.randint(1, 40)):
                data[rng.randrange(4, len(data))] ^= rng.randrange(1, 256)
        elif kind == 1:  # cut anywhere
            data = data[: rng.randrange(1, len(data))]
        elif kind == 2:  # one format's header on another's body
            other = rng.choice(sources)
            data = other[: rng.randrange(2, 64)] + data[rng.randrange(2, 64) :]
        else:  # random bytes inserted into the middle
            at = rng.randrange(len(data))
            data = data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 500))) + data[at:]
        params = {"subject": "10,10,100,100", "output": "jpeg" if i % 3 == 0 else "json"}
        r = post(client, bytes(data), params)
        seen.add(r.status_code)
        if r.status_code != 200:
            assert_error(r, r.status_code)
            assert r.status_code in (400, 413, 415, 422), r.text
    assert {415, 422} <= seen, f"answers {sorted(seen)}: the corruptions should be refused in both ways"
    r = post(client, jpeg_bytes(photo), {"subject": "100,50,250,400"})
    assert r.status_code == 200


# -- access --------------------------------------------------------------------------------------------
def test_api_key_and_cors(cropper, photo):
    settings = ServeSettings(api_key="s3cret-key", cors_origins=["https://cms.example.com"])
    with TestClient(create_app(cropper, settings)) as c:
        data = jpeg_bytes(photo)
        assert "API key" in assert_error(post(c, data, {"subject": "100,50,250,400"}), 401)
        assert_error(post(c, data, {"subject": "100,50,250,400"}, headers={"Authorization": "Bearer wrong"}), 401)
        assert_error(c.get("/v1/model"), 401)
        assert c.get("/v1/health").status_code == 200  # for load balancers
        ok = post(c, data, {"subject": "100,50,250,400"}, headers={"Authorization": "Bearer s3cret-key"})
        assert ok.status_code == 200
        assert c.get("/v1/model", headers={"X-API-Key": "s3cret-key"}).status_code == 200
        allowed = c.get("/v1/health", headers={"Origin": "https://cms.example.com"})
        assert allowed.headers["access-control-allow-origin"] == "https://cms.example.com"
        other = c.get("/v1/health", headers={"Origin": "https://evil.example.net"})
        assert "access-control-allow-origin" not in other.headers
    with TestClient(create_app(cropper, ServeSettings())) as c:  # default: CORS off
        r = c.get("/v1/health", headers={"Origin": "https://cms.example.com"})
        assert "access-control-allow-origin" not in r.headers


def test_page_docs_and_schema_need_no_network(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="photo-card"' in page.text
    for asset in ("/static/app.js", "/static/zip.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    docs = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in docs
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    for text in (page.text, docs, client.get("/static/app.js").text):
        assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text
    schema = client.get("/openapi.json").json()
    assert {"/v1/crop", "/v1/health", "/v1/model"} <= set(schema["paths"])
    params = {p["name"]: p for p in schema["paths"]["/v1/crop"]["post"]["parameters"]}
    assert {"aspect", "size", "subject", "output", "heatmap"} <= set(params)
    # OpenAPI 3.0, as the bundled Swagger UI reads it: no JSON-Schema-2020 spellings left
    assert schema["openapi"] == "3.0.3"
    text = json.dumps(schema)
    assert '{"type": "null"}' not in text and "contentMediaType" not in text
    assert params["size"]["schema"]["nullable"] is True and params["size"]["schema"]["type"] == "string"
    assert params["area"]["schema"]["minimum"] == 0 and params["area"]["schema"]["exclusiveMinimum"] is True
    upload = schema["paths"]["/v1/crop"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload["properties"]["photo"] == {**upload["properties"]["photo"], "type": "string", "format": "binary"}


# -- busy: a full queue and the time limit answer 503 with Retry-After -----------------------------------
class HeldCropper:
    """The real cropper behind a gate that the test opens: makes the model 'busy' on demand."""

    def __init__(self, cropper):
        self.cropper = cropper
        self.dim = cropper.dim
        self.gate = threading.Event()
        self.entered = threading.Event()

    def prepare(self, *args, **kwargs):
        return self.cropper.prepare(*args, **kwargs)

    def crop(self, *args, **kwargs):
        self.entered.set()
        self.gate.wait(20)
        return self.cropper.crop(*args, **kwargs)


def test_busy_server_answers_503_with_retry_after(cropper, photo):
    held = HeldCropper(cropper)
    settings = ServeSettings(queue_size=1, batch_size=1, batch_wait_ms=0, timeout=20)
    data = jpeg_bytes(photo)
    params = {"subject": "100,50,250,400"}
    with (
        LiveServer(create_app(held, settings)) as server,
        httpx.Client(base_url=server.url, timeout=30) as c,
        ThreadPoolExecutor(2) as pool,
    ):

        def send():
            return c.post("/v1/crop", params=params, files={"photo": ("a.jpg", data, "image/jpeg")})

        running = pool.submit(send)
        assert held.entered.wait(20)  # the model holds the first photo
        queued = pool.submit(send)
        deadline = time.monotonic() + 20
        while c.get("/v1/health").json()["queued"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        refused = send()  # the queue is full: refused at once
        assert_error(refused, 503)
        assert int(refused.headers["retry-after"]) >= 1
        held.gate.set()
        assert running.result(30).status_code == 200 and queued.result(30).status_code == 200
        assert send().status_code == 200

    held = HeldCropper(cropper)
    with (
        LiveServer(create_app(held, ServeSettings(timeout=0.5))) as server,
        httpx.Client(base_url=server.url, timeout=30) as c,
    ):
        r = c.post("/v1/crop", params=params, files={"photo": ("a.jpg", data, "image/jpeg")})
        assert "time limit" in assert_error(r, 503) and "retry-after" in r.headers
        held.gate.set()
        assert c.get("/v1/health").json()["status"] == "ok"
