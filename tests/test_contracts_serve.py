"""Contracts of the HTTP API's error statuses, with a network stub and no subject finder (no shared data)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from contract_support import FixedNetwork  # noqa: E402
from gencrop.inference import Cropper  # noqa: E402
from gencrop.serve import create_app  # noqa: E402


def _finds_nothing(img, size):
    from gencrop.subject import SubjectNotFound

    raise SubjectNotFound("nothing stands out in this photo")


@pytest.fixture(scope="module")
def client():
    cropper = Cropper(FixedNetwork([0.1, 0.25, 0.5, 0.75]), subject_finder=_finds_nothing)
    with TestClient(create_app(cropper), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def photo_bytes() -> bytes:
    rng = np.random.default_rng(3)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (200, 320, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _post(client, data, params=None):
    return client.post("/v1/crop", params=params or {}, files={"photo": ("photo.png", data, "image/png")})


def test_no_subject_found_is_422(client, photo_bytes):
    r = _post(client, photo_bytes)
    assert r.status_code == 422, r.text
    assert r.json()["status"] == 422 and "nothing stands out" in r.json()["error"]


def test_a_subject_outside_the_photo_is_400(client, photo_bytes):
    r = _post(client, photo_bytes, {"subject": "400,10,20,20"})
    assert r.status_code == 400, r.text


def test_a_given_subject_is_cropped_as_the_python_api_crops_it(client, photo_bytes):
    # the stub's proposal (32, 20, 128 x 160) shifted to hold the subject (250..300, 150..190)
    r = _post(client, photo_bytes, {"subject": "250,150,50,40"})
    assert r.status_code == 200, r.text
    assert [c["box"] for c in r.json()["crops"]] == [[172, 30, 128, 160]]
