"""A dynamic batcher: requests that arrive close together share one ``session.run``.

Each model gets one batcher. A request is an array of one or more rows
(``(n, C, H, W)``); the worker takes the first waiting request, then keeps
gathering until the batch holds ``max_batch`` rows or ``max_wait`` seconds have
passed since that first request arrived (Triton's "maximum queue delay"), runs
the batch in a worker thread so the event loop stays free, and hands each
caller back its own rows. The queue is bounded: a full queue refuses at once
(:class:`QueueFull`) instead of letting latency pile up.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


class QueueFull(Exception):
    """The batcher's queue is at its limit; the caller should retry later."""


class ShuttingDown(Exception):
    """The batcher no longer takes requests: the server is stopping."""


@dataclass
class _Item:
    rows: np.ndarray
    future: asyncio.Future
    arrived: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    """What a batch cost: its size in rows and the seconds it ran."""

    rows: int
    requests: int
    seconds: float


class Batcher:
    """Gathers requests for ``run`` (a function ``(N, ...) array -> (N, ...) array``).

    ``on_batch`` is called with a :class:`BatchStats` after each run, and
    ``on_depth`` with the number of requests waiting whenever it changes (for metrics).
    """

    def __init__(
        self,
        run: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch: int = 8,
        max_wait: float = 0.005,
        queue_size: int = 64,
        on_batch: Callable[[BatchStats], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch < 1 or queue_size < 1 or max_wait < 0:
            raise ValueError("max_batch and queue_size must be at least 1, max_wait not negative")
        self.run = run
        self.max_batch = int(max_batch)
        self.max_wait = float(max_wait)
        self.queue_size = int(queue_size)
        self._on_batch = on_batch or (lambda stats: None)
        self._on_depth = on_depth or (lambda depth: None)
        self._waiting: list[_Item] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closing = False
        # One thread: session.run already uses every intra-op thread it was given.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoo-batch")

    @property
    def depth(self) -> int:
        """Requests waiting for a batch (not counting the one running)."""
        return len(self._waiting)

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._work())

    def check_room(self) -> None:
        """Raise now what :meth:`submit` would: lets a server refuse before it decodes anything."""
        if self._closing or self._task is None:
            raise ShuttingDown("the server is shutting down")
        if len(self._waiting) >= self.queue_size:
            raise QueueFull(f"{len(self._waiting)} requests are already waiting")

    async def submit(self, rows: np.ndarray) -> np.ndarray:
        """Queue ``rows`` and wait for their outputs; :class:`QueueFull` at once when full."""
        self.check_room()
        item = _Item(rows, asyncio.get_running_loop().create_future())
        self._waiting.append(item)
        self._on_depth(len(self._waiting))
        self._wakeup.set()
        return await item.future

    async def close(self) -> None:
        """Refuse new requests, finish every queued one, then stop the worker."""
        self._closing = True
        if self._task is not None:
            self._wakeup.set()
            await self._task
            self._task = None
        self._pool.shutdown(wait=True)

    # -- the worker -----------------------------------------------------------

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._waiting:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            deadline = self._waiting[0].arrived + self.max_wait
            while self._rows_waiting() < self.max_batch and not self._closing:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), left)
                except asyncio.TimeoutError:
                    break
            batch = self._take()
            self._on_depth(len(self._waiting))
            if batch:
                await self._run(loop, batch)

    def _rows_waiting(self) -> int:
        return sum(len(item.rows) for item in self._waiting if not item.future.done())

    def _take(self) -> list[_Item]:
        """The next batch: whole requests, at most ``max_batch`` rows (one larger request runs alone)."""
        batch: list[_Item] = []
        rows = 0
        while self._waiting:
            item = self._waiting[0]
            if item.future.done():  # its caller timed out or went away
                self._waiting.pop(0)
                continue
            if batch and rows + len(item.rows) > self.max_batch:
                break
            batch.append(self._waiting.pop(0))
            rows += len(item.rows)
        return batch

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        arrays = [item.rows for item in batch]
        start = time.perf_counter()
        try:
            joined = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
            out = await loop.run_in_executor(self._pool, self.run, joined)
        except Exception as exc:  # every caller in the batch hears about it
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        seconds = time.perf_counter() - start
        offset = 0
        for item in batch:
            n = len(item.rows)
            if not item.future.done():
                item.future.set_result(out[offset : offset + n])
            offset += n
        self._on_batch(BatchStats(rows=len(joined), requests=len(batch), seconds=seconds))


__all__ = ["BatchStats", "Batcher", "QueueFull", "ShuttingDown"]

