"""Helpers for the `gencrop serve` tests: the bundled model loaded once, a live server on loopback, test photos."""

from __future__ import annotations

import functools
import io
import socket
import threading
import time

import numpy as np
from PIL import Image


@functools.lru_cache(maxsize=1)
def bundled_cropper():
    from gencrop import Cropper

    return Cropper.from_pretrained(device="cpu")


@functools.lru_cache(maxsize=1)
def warmed_cropper():
    """The bundled cropper after `gencrop serve`'s warm-up: its subject finder is loaded, as in a server
    that listens (the first load takes longer than a request may)."""
    from gencrop.serve import warm_up

    cropper = bundled_cropper()
    warm_up(cropper)
    return cropper


class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1 (a free port) in a thread; a context manager."""

    def __init__(self, app):
        import uvicorn

        from gencrop.serve.connections import uvicorn_config

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn_config(app, app.state.settings, log_level="warning", timeout_graceful_shutdown=5)
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


def jpeg_bytes(img: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, **kwargs)
    return buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def sixteen_bit_png(img: Image.Image) -> bytes:
    """The photo's luminance as a 16-bit grayscale PNG."""
    gray = np.asarray(img.convert("L"), dtype=np.uint16) * 257
    return png_bytes(Image.fromarray(gray))  # uint16 -> mode I;16


def rotated_jpeg(img: Image.Image) -> bytes:
    """The photo stored sideways with EXIF orientation 6 (rotate 90° clockwise to view): views as ``img``."""
    stored = img.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return jpeg_bytes(stored, exif=exif.tobytes())


@functools.lru_cache(maxsize=2)
def png_bomb(side: int = 20000) -> bytes:
    """A valid 1-bit PNG of side x side pixels (400 MP at 20000) that compresses to tens of kilobytes."""
    return png_bytes(Image.new("1", (side, side), 0))
