"""Limits applied around every request, before the application reads its body.

An ASGI middleware, so that an oversized upload is refused from its
``Content-Length`` (or, when it has none, as soon as it grows past the limit)
without being stored, and so that an answer given before the request's body
was read to its end says ``Connection: close``: the client knows the
connection ends, and the server does not wait for the rest of the body.
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
    """Refuse bodies over ``max_body`` bytes (413) on paths starting with one of ``paths``; close the
    connection after any answer that leaves a request body unread."""

    def __init__(self, app, *, max_body: int, paths: tuple[str, ...] = ("/v1/",)):
        self.app = app
        self.max_body = max_body
        self.paths = paths

    def _too_large(self) -> ApiError:
        return ApiError(413, f"the upload is larger than the limit of {self.max_body / 2**20:.1f} MiB", close=True)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        limited = scope["path"].startswith(self.paths)
        declared = 0
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await send_error(send, ApiError(400, "Content-Length is not a number", close=True))
            if limited and declared > self.max_body:
                return await send_error(send, self._too_large())
        body_left = declared > 0 or b"transfer-encoding" in headers  # a body the app may not read
        received = 0
        started = False

        async def counted_receive():
            nonlocal received, body_left
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if not message.get("more_body", False):
                    body_left = False
                if limited and received > self.max_body:  # no Content-Length, or a false one
                    raise self._too_large()
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if body_left and not any(k.lower() == b"connection" for k, _ in message.get("headers", ())):
                    message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except ApiError as e:  # raised by counted_receive outside the framework's error handling
            if not started:
                await send_error(send, e)
