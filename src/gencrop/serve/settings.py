"""What a server allows: the limits behind `gencrop serve`'s flags, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class ServeSettings:
    """Limits and access rules of one server (defaults are safe for a laptop)."""

    max_upload_bytes: int = 25 * 1024 * 1024  # a request body larger than this is refused (413)
    max_pixels: int = 50_000_000  # photos above this are refused before decoding (413)
    max_output_pixels: int = 50_000_000  # image answers above this are refused (400): bounds resize and encode
    min_side: int = 16  # smaller photos cannot be cropped meaningfully (422)
    timeout: float = 30.0  # seconds one request may take in all, its upload included (408 / 503)
    header_timeout: float = 10.0  # seconds a connection may take to send a request's headers
    max_connections: int = 1000  # open connections; more are closed as they arrive
    queue_size: int = 32  # photos being prepared or waiting for the model; beyond: 503 at once
    max_in_flight: int = 64  # uploaded photos being processed (held in memory); beyond: 429
    batch_size: int = 8  # photos per network pass
    batch_wait_ms: float = 5.0  # how long the first waiting photo waits for company
    decode_threads: int = field(default_factory=lambda: os.cpu_count() or 2)  # photos decoded at once
    api_key: str | None = None  # required on /v1/crop and /v1/model when set
    cors_origins: list[str] = field(default_factory=list)  # CORS is off unless origins are given
    jpeg_quality: int = 90

    def __post_init__(self):
        for name in (
            "max_upload_bytes",
            "max_pixels",
            "max_output_pixels",
            "max_connections",
            "min_side",
            "queue_size",
            "max_in_flight",
            "batch_size",
            "decode_threads",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("timeout", "header_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.batch_wait_ms < 0:
            raise ValueError(f"batch_wait_ms must be >= 0, got {self.batch_wait_ms}")
        if self.api_key is not None and not self.api_key:
            raise ValueError("the API key must not be empty")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be 1-100, got {self.jpeg_quality}")
