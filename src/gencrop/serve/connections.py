"""Connection-level guards in front of the application, independent of any reverse proxy.

uvicorn times out idle keep-alive connections but not a client that sends
its request headers a byte at a time (slowloris), and accepts connections
until the process runs out of file descriptors. The protocol here closes a
connection whose headers do not arrive within ``header_timeout`` seconds,
closes new connections beyond ``max_connections`` as they arrive, and does
not keep a connection open for the rest of a request body that the
application answered without reading. Request bodies are timed by the
application (the request's deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
import resource

REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def guarded_protocol(header_timeout: float, max_connections: int) -> type:
    """uvicorn's h11 protocol with a header timeout and a connection limit (pass it as ``http=``)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _got_bytes = False

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.close()
                return
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self.conn.their_state is h11.IDLE:  # a new request's headers are (still) coming
                self._got_bytes = True
                self._arm()
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.SEND_BODY:
                self.transport.close()  # answered without reading the body: do not wait for the rest

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            busy = self.cycle is not None and not self.cycle.response_complete
            if self.transport.is_closing() or busy or self.conn.their_state is not h11.IDLE:
                return
            if self._got_bytes:
                self.transport.write(REQUEST_TIMEOUT)
            self.transport.close()

    return GuardedH11Protocol


def raise_open_files_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


def server_options(settings) -> dict:
    """The uvicorn options gencrop serves with (``uvicorn.run(app, **server_options(settings), ...)``):
    the guarded protocol for ``settings``, one worker."""
    return {"http": guarded_protocol(settings.header_timeout, settings.max_connections), "workers": 1}


def uvicorn_config(app, settings, **options):
    """A ``uvicorn.Config`` for ``app`` with :func:`server_options` (for a server run in a thread)."""
    import uvicorn

    return uvicorn.Config(app, **server_options(settings), **options)
