"""Errors the API answers with: an HTTP status and a one-line message, always as JSON."""

from __future__ import annotations

from starlette.exceptions import HTTPException


class ApiError(HTTPException):
    """A request the server refuses or cannot serve; ``status`` is the HTTP status to answer with.

    An ``HTTPException``, so that one raised while the framework reads the
    body (the upload limit) reaches the same JSON error handler. ``close``:
    the answer ends the connection (``Connection: close``), for refusals that
    leave the rest of the request unread.
    """

    def __init__(self, status: int, message: str, *, retry_after: float | None = None, close: bool = False):
        headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else {}
        if close:
            headers["Connection"] = "close"
        super().__init__(status_code=status, detail=message, headers=headers or None)

    @property
    def status(self) -> int:
        return self.status_code

    @property
    def message(self) -> str:
        return self.detail


def error_body(status: int, message: str) -> dict:
    """The JSON every error answer carries."""
    return {"error": message, "status": status}
