"""One request's time limit, checked at every stage it passes (upload, decode slot, preparation,
queue, model, encoding), so that every answer, refusals included, comes within ``--timeout``."""

from __future__ import annotations

import time

from .errors import ApiError


class Deadline:
    """``seconds`` from now; :meth:`check` and :meth:`passed` name the stage that ran out of time."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def passed(self, stage: str) -> ApiError:
        """The 503 for a request whose time ran out ``stage`` (\"waiting for the model\", ...)."""
        return ApiError(
            503,
            f"the request passed the time limit ({self.seconds:g} s) {stage}; the server is busy, try again shortly",
            retry_after=2,
        )

    def check(self, stage: str) -> None:
        if self.left() <= 0:
            raise self.passed(stage)
