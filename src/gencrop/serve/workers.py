"""The threads that do a request's image work (decode, find the subject, resize, encode), off the event loop.

At most ``threads`` such jobs run at once: that bounds the CPU they take
from the model thread and the decoded photos held in memory. Waiting for a
thread and waiting for its result are both bounded by the request's
:class:`~gencrop.serve.deadlines.Deadline`; a job whose request gave up keeps
its thread until it finishes (a decode cannot be interrupted), so abandoned
work never piles up beyond ``threads``. After a job, memory its photo freed
is handed back to the system now and then (:class:`~gencrop.serve.memory.Trimmer`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .deadlines import Deadline
from .memory import Trimmer


class ImageWorkers:
    """A pool of ``threads`` threads whose jobs are awaited from the event loop with a deadline."""

    def __init__(self, threads: int, name: str = "gencrop-image"):
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._slots: asyncio.Semaphore | None = None  # made on the event loop that uses it
        self.busy = 0
        self.trimmer = Trimmer()

    async def run(self, fn: Callable[[], Any], deadline: Deadline, *, waiting: str, running: str) -> Any:
        """``fn()`` in a pool thread; a 503 naming ``waiting`` or ``running`` when the deadline passes first."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.threads)
        slots = self._slots
        deadline.check(waiting)
        try:
            async with asyncio.timeout(deadline.left()):
                await slots.acquire()
        except TimeoutError:
            raise deadline.passed(waiting) from None
        loop = asyncio.get_running_loop()
        self.busy += 1
        try:
            future = self._pool.submit(self._job, fn)
        except BaseException:
            self._release(slots)
            raise
        future.add_done_callback(lambda _: _call_soon(loop, self._release, slots))
        waiter = asyncio.wrap_future(future)
        try:
            async with asyncio.timeout(deadline.left()):
                return await asyncio.shield(waiter)
        except TimeoutError:
            waiter.add_done_callback(_consume)  # its error, if any, has nobody to go to
            raise deadline.passed(running) from None

    def _job(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        finally:
            self.trimmer.maybe()

    def _release(self, slots: asyncio.Semaphore) -> None:
        self.busy -= 1
        slots.release()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable, *args) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed while the job ran: nobody to tell
        loop.call_soon_threadsafe(fn, *args)


def _consume(waiter: asyncio.Future | Future) -> None:
    if not waiter.cancelled():
        waiter.exception()
