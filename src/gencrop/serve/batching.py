"""A bounded queue in front of the model that runs waiting requests together.

Requests arrive on many threads; one worker thread owns the model. When the
worker is free it takes everything waiting (up to ``max_batch``); when only a
few wait, it gives the first one ``max_wait`` seconds (a few milliseconds) for
company, never more. A full queue refuses at once (:class:`QueueFull`) rather
than letting requests pile up, and every submitted item is answered exactly
once: with its result, its own exception, or a shutdown error. A place can be
reserved (:meth:`BatchQueue.reserve`) before the work to fill it is done, so a
server refuses a photo before decoding it rather than after.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

__all__ = ["BatchQueue", "BatchInfo", "Reservation", "QueueFull", "QueueClosed", "DeadlinePassed"]


class QueueFull(RuntimeError):
    """The queue holds ``capacity`` items already."""


class QueueClosed(RuntimeError):
    """The queue is shutting down and takes no more work."""


class DeadlinePassed(TimeoutError):
    """The item's deadline passed while it waited: it was not run."""


@dataclass
class BatchInfo:
    """How an item was served: time spent waiting and running, and with how many others."""

    queued_s: float
    run_s: float
    batch_size: int


@dataclass
class _Item:
    payload: Any
    future: Future
    enqueued: float
    deadline: float | None


class Reservation:
    """A place held in a :class:`BatchQueue`: pass it to ``submit``, or ``release`` it (both at most once)."""

    def __init__(self, queue: BatchQueue):
        self._queue: BatchQueue | None = queue

    def release(self) -> None:
        """Give the place back unused; nothing once it was used or released."""
        queue, self._queue = self._queue, None
        if queue is not None:
            with queue._cond:
                queue._reserved -= 1

    def _use(self, queue: BatchQueue) -> None:
        if self._queue is not queue:
            raise ValueError("this reservation was used, released, or belongs to another queue")
        self._queue = None
        queue._reserved -= 1


@dataclass
class QueueStats:
    submitted: int = 0
    rejected: int = 0
    completed: int = 0
    expired: int = 0
    batches: int = 0
    largest_batch: int = 0
    batch_sizes: dict = field(default_factory=dict)


class BatchQueue:
    """``process(payloads) -> results`` on batches of submitted payloads, in one worker thread.

    ``process`` returns one entry per payload, in order; an entry that is an
    ``Exception`` instance is raised to that item's waiter only. If ``process``
    itself raises, every item of the batch gets the exception. Each future's
    result is ``(result, BatchInfo)``.
    """

    def __init__(
        self,
        process: Callable[[Sequence[Any]], Sequence[Any]],
        *,
        capacity: int = 32,
        max_batch: int = 8,
        max_wait: float = 0.005,
        name: str = "gencrop-batch",
    ):
        if capacity < 1 or max_batch < 1:
            raise ValueError("capacity and max_batch must be at least 1")
        self.process = process
        self.capacity = capacity
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.stats = QueueStats()
        self._items: deque[_Item] = deque()
        self._reserved = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    @property
    def reserved(self) -> int:
        """Places held for photos still being prepared."""
        with self._cond:
            return self._reserved

    @property
    def alive(self) -> bool:
        """Whether the worker thread runs and the queue takes work."""
        return self._thread.is_alive() and not self._closed

    def _check_room(self) -> None:
        if self._closed:
            raise QueueClosed("the server is shutting down")
        if len(self._items) + self._reserved >= self.capacity:
            self.stats.rejected += 1
            raise QueueFull(f"{len(self._items) + self._reserved} photos are being prepared or waiting for the model")

    def full(self) -> bool:
        with self._cond:
            return self._closed or len(self._items) + self._reserved >= self.capacity

    def reserve(self) -> Reservation:
        """Hold a place for a payload still to be made; :class:`QueueFull` (at once) when there is none."""
        with self._cond:
            self._check_room()
            self._reserved += 1
        return Reservation(self)

    def submit(self, payload: Any, *, deadline: float | None = None, reservation: Reservation | None = None) -> Future:
        """Queue one payload (in the place ``reservation`` holds, if given); ``deadline`` is a
        ``time.monotonic()`` after which it is not run."""
        future: Future = Future()
        with self._cond:
            if reservation is not None:
                reservation._use(self)
                if self._closed:
                    raise QueueClosed("the server is shutting down")
            else:
                self._check_room()
            self._items.append(_Item(payload, future, time.monotonic(), deadline))
            self.stats.submitted += 1
            self._cond.notify()
        return future

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop taking work, finish what is queued, then stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        with self._cond:  # the worker did not finish in time: nobody may wait forever
            while self._items:
                item = self._items.popleft()
                if item.future.set_running_or_notify_cancel():
                    item.future.set_exception(QueueClosed("the server is shutting down"))

    # -- worker ------------------------------------------------------------------
    def _take(self) -> list[_Item] | None:
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if not self._items:
                return None  # closed and drained
            # patience: the first item waits at most max_wait (counted from its arrival) for company
            until = self._items[0].enqueued + self.max_wait
            while len(self._items) < self.max_batch and not self._closed:
                left = until - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            n = min(self.max_batch, len(self._items))
            return [self._items.popleft() for _ in range(n)]

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            now = time.monotonic()
            batch = []
            for item in taken:
                if not item.future.set_running_or_notify_cancel():
                    continue  # its waiter gave up: nobody to answer
                if item.deadline is not None and now > item.deadline:
                    self.stats.expired += 1
                    item.future.set_exception(DeadlinePassed("the request's time limit passed while it waited"))
                    continue
                batch.append(item)
            if batch:
                self._run_batch(batch, now)

    def _run_batch(self, batch: list[_Item], started: float) -> None:
        try:
            results = list(self.process([item.payload for item in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"batch process returned {len(results)} results for {len(batch)} items")
        except BaseException as e:  # noqa: BLE001 - delivered to every waiter of the batch
            results = [e] * len(batch)
        run_s = time.monotonic() - started
        n = len(batch)
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, n)
        self.stats.batch_sizes[n] = self.stats.batch_sizes.get(n, 0) + 1
        for item, result in zip(batch, results):
            info = BatchInfo(queued_s=started - item.enqueued, run_s=run_s, batch_size=n)
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result((result, info))
            self.stats.completed += 1
