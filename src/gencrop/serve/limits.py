"""Limits applied before a request body is read: its size and how many requests are in progress.

An ASGI middleware, so that an oversized upload is refused from its
``Content-Length`` (or, when it has none, as soon as it grows past the limit)
without being stored, and so that the number of bodies held in memory at once
is bounded (429 beyond it).
"""

from __future__ import annotations

import json

from .errors import ApiError, error_body


async def send_error(send, error: ApiError) -> None:
    """Answer an ASGI request with the JSON body of ``error``."""
    body = json.dumps(error_body(error.status, error.message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (error.headers or {}).items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """Refuse bodies over ``max_body`` bytes (413) and more than ``max_in_flight`` requests at once (429).

    Only requests whose path starts with one of ``paths`` are counted and limited.
    """

    def __init__(self, app, *, max_body: int, max_in_flight: int, paths: tuple[str, ...] = ("/v1/",)):
        self.app = app
        self.max_body = max_body
        self.max_in_flight = max_in_flight
        self.paths = paths
        self.in_flight = 0

    def _too_large(self) -> ApiError:
        return ApiError(413, f"the upload is larger than the limit of {self.max_body / 2**20:.1f} MiB")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.paths):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await send_error(send, ApiError(400, "Content-Length is not a number"))
            if declared > self.max_body:
                return await send_error(send, self._too_large())
        if self.in_flight >= self.max_in_flight:
            return await send_error(
                send,
                ApiError(429, f"too many requests in progress ({self.in_flight}); try again shortly", retry_after=1),
            )

        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:  # no Content-Length, or a false one
                    raise self._too_large()
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        self.in_flight += 1
        try:
            await self.app(scope, counted_receive, tracked_send)
        except ApiError as e:  # raised by counted_receive outside the framework's error handling
            if not started:
                await send_error(send, e)
        finally:
            self.in_flight -= 1
