"""Keeping a long-running server's memory flat: glibc's allocator, told to hand freed memory back.

A request decodes a photo (megabytes), finds its subject and may encode a
crop, in one of several threads; glibc gives each thread its own heap (an
"arena") and keeps freed blocks for reuse rather than returning them to the
system. Photos of ever different sizes fragment those heaps, so the resident
size creeps up with the requests served even though nothing is kept. Fewer
arenas and a periodic ``malloc_trim`` return that memory. On a C library
other than glibc both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time

M_ARENA_MAX = -8  # mallopt parameter (glibc's malloc.h)


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LIBC = _libc()


def limit_arenas(count: int = 2) -> bool:
    """At most ``count`` malloc arenas for threads started from now on; whether it took effect."""
    return bool(_LIBC is not None and _LIBC.mallopt(M_ARENA_MAX, count))


class Trimmer:
    """``malloc_trim(0)`` at most once every ``interval`` seconds, from whichever thread calls :meth:`maybe`."""

    def __init__(self, interval: float = 2.0):
        self.interval = interval
        self._last = time.monotonic()
        self._lock = threading.Lock()
        self.trims = 0

    def maybe(self) -> None:
        if _LIBC is None:
            return
        now = time.monotonic()
        if now - self._last < self.interval or not self._lock.acquire(blocking=False):
            return
        try:
            self._last = now
            _LIBC.malloc_trim(0)
            self.trims += 1
        finally:
            self._lock.release()
