"""A dynamic batcher: requests that arrive close together share one ``session.run``.

Each model gets one batcher. A request is an array of one or more rows
(``(n, C, H, W)``). The worker forms a batch of whole requests, at most
``max_batch`` rows, and runs it in a worker thread so the event loop stays free:

* while the model is idle, it waits up to ``max_wait`` seconds after the
  first request arrived for others to join it, but only while others are on
  their way (``coming()``: admitted and still decoding) or the last batch
  held more than one request. A lone request on a quiet server runs at
  once, so batching costs nothing at concurrency 1; and once as many
  requests wait as the last batch held, with none still decoding, the
  batch runs without waiting out ``max_wait`` (steady clients all came back);
* while the model runs, the next batch keeps filling, and is assembled
  (concatenated) as soon as it is full, so it is ready the moment the model
  is free: the CPU does not idle between batches.

The queue is bounded: a full queue refuses at once (:class:`QueueFull`). A
request whose caller stopped waiting (a timeout, a closed connection) leaves
the queue at once. A worker task that dies is logged and restarted after
``restart_delay``; :attr:`alive` is false meanwhile (``/readyz`` says 503).
Each batch's outputs are checked to have one row per input row.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

log = logging.getLogger("zoo.serve")


class QueueFull(Exception):
    """The batcher's queue is at its limit; the caller should retry later."""


class ShuttingDown(Exception):
    """The batcher no longer takes requests: the server is stopping."""


class BadOutput(RuntimeError):
    """The model answered a batch with the wrong number of rows."""


@dataclass(eq=False)
class _Item:
    rows: np.ndarray
    future: asyncio.Future
    arrived: float = field(default_factory=time.perf_counter)
    waited: float = 0.0


@dataclass
class BatchStats:
    """What a batch cost: rows, requests, seconds in the model, seconds to assemble, each request's queue wait."""

    rows: int
    requests: int
    seconds: float
    assembly: float = 0.0
    waits: tuple[float, ...] = ()


class Batcher:
    """Gathers requests for ``run`` (a function ``(N, ...) array -> (N, ...) array``).

    ``on_batch`` is called with a :class:`BatchStats` after each run,
    ``on_depth`` with the number of requests waiting whenever it changes (for
    metrics), ``on_death`` with the error when the worker dies, and
    ``coming()`` says how many requests will be submitted soon.
    """

    def __init__(
        self,
        run: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch: int = 8,
        max_wait: float = 0.005,
        queue_size: int = 64,
        name: str = "model",
        on_batch: Callable[[BatchStats], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
        coming: Callable[[], int] | None = None,
        on_death: Callable[[BaseException], None] | None = None,
        restart_delay: float = 0.1,
    ) -> None:
        if max_batch < 1 or queue_size < 1 or max_wait < 0:
            raise ValueError("max_batch and queue_size must be at least 1, max_wait not negative")
        self.run = run
        self.name = name
        self.max_batch = int(max_batch)
        self.max_wait = float(max_wait)
        self.queue_size = int(queue_size)
        self.restart_delay = float(restart_delay)
        self.restarts = 0
        self._on_batch = on_batch or (lambda stats: None)
        self._on_depth = on_depth or (lambda depth: None)
        self._coming = coming or (lambda: 0)
        self._on_death = on_death or (lambda error: None)
        self._waiting: list[_Item] = []
        self._current: list[_Item] = []  # taken by the worker, not yet handed to the model
        self._running: asyncio.Future | None = None
        self._wake: asyncio.Future | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._closing = False
        self._company = False  # the last batch held more than one request: concurrency is here
        self._last_requests = 1  # how many requests the last batch held
        self.alive = False
        # One thread: session.run already uses every intra-op thread it was given.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoo-batch")

    @property
    def depth(self) -> int:
        """Requests waiting for the model: queued, or in the next batch, assembled (not counting those running)."""
        return len(self._waiting) + len(self._current)

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._spawn()

    def check_room(self) -> None:
        """Raise now what :meth:`submit` would: lets a server refuse before it reads or decodes anything."""
        if self._closing or self._loop is None:
            raise ShuttingDown("the server is shutting down")
        if self.depth >= self.queue_size:
            raise QueueFull(f"{self.depth} requests are already waiting")

    def submit(self, rows: np.ndarray) -> asyncio.Future:
        """Queue ``rows``; the future holds their outputs. :class:`QueueFull` at once when full.

        Cancelling the future (``asyncio.wait_for`` does on a timeout) takes
        the request out of the queue at once.
        """
        self.check_room()
        item = _Item(rows, self._loop.create_future())
        item.future.add_done_callback(lambda fut, item=item: self._forget(item) if fut.cancelled() else None)
        self._waiting.append(item)
        self._on_depth(self.depth)
        self._poke()
        return item.future

    async def close(self) -> None:
        """Refuse new requests, finish every queued one, then stop the worker."""
        self._closing = True
        self._poke()
        if self._task is not None:
            await asyncio.wait([self._task])
            self._task = None
        if self._running is not None:
            await asyncio.wait([self._running])
        for item in self._waiting:  # only when the worker could not finish them
            if not item.future.done():
                item.future.set_exception(ShuttingDown("the server is shutting down"))
        self._pool.shutdown(wait=True)

    # -- supervision ------------------------------------------------------------

    def _spawn(self) -> None:
        self._task = self._loop.create_task(self._work())
        self._task.add_done_callback(self._ended)
        self.alive = True

    def _ended(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is None:
            return  # a normal end: closing
        self.alive = False
        error: BaseException = asyncio.CancelledError() if task.cancelled() else task.exception()
        for item in self._current:
            if not item.future.done():
                item.future.set_exception(RuntimeError(f"the batcher of {self.name} failed: {error!r}"))
        self._current = []
        if self._closing:
            return
        self.restarts += 1
        self._on_death(error)
        log.error("the batcher of %s died (%r); restarting it in %.2g s", self.name, error, self.restart_delay,
                  exc_info=None if task.cancelled() else error)
        try:
            self._loop.call_later(self.restart_delay, self._restart)
        except RuntimeError:  # the loop is closed: nothing left to serve
            pass

    def _restart(self) -> None:
        if not self._closing:
            self._spawn()
            log.warning("the batcher of %s is running again (restart %d)", self.name, self.restarts)
            self._poke()

    # -- the worker -------------------------------------------------------------

    def _poke(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _sleep(self, timeout: float | None) -> None:
        """Until :meth:`_poke` or ``timeout`` seconds."""
        self._wake = self._loop.create_future()
        busy = self._running is not None and not self._running.done()
        waits = [self._wake, self._running] if busy else [self._wake]
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)

    async def _work(self) -> None:
        while True:
            if not self._waiting:
                if self._closing:
                    break
                await self._sleep(None)
                continue
            await self._gather()
            self._current = self._take()
            if not self._current:
                continue
            taken = self._current
            joined, assembly = self._assemble(taken)
            while self._running is not None and not self._running.done():
                await asyncio.wait([self._running])
            if len(self._current) != len(taken):  # some callers gave up while the model was busy
                if not self._current:
                    continue
                joined, more = self._assemble(self._current)
                assembly += more
            batch, self._current = self._current, []
            self._on_depth(self.depth)
            self._launch(batch, joined, assembly)
        if self._running is not None:
            await asyncio.wait([self._running])

    async def _gather(self) -> None:
        """Return when the waiting requests should form the next batch."""
        deadline = self._waiting[0].arrived + self.max_wait
        while self._waiting and self._rows_waiting() < self.max_batch and not self._closing:
            busy = self._running is not None and not self._running.done()
            if busy:  # the model is busy: keep filling until it is free
                await self._sleep(None)
                continue
            left = deadline - time.perf_counter()
            if left <= 0 or not (self._company or self._coming()):
                return
            if not self._coming() and len(self._waiting) >= self._last_requests:
                return  # as many as the last batch held are here and none is on its way: waiting gains nothing
            await self._sleep(left)

    @staticmethod
    def _assemble(batch: list[_Item]) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        arrays = [item.rows for item in batch]
        joined = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        return joined, time.perf_counter() - start

    def _rows_waiting(self) -> int:
        return sum(len(item.rows) for item in self._waiting)

    def _forget(self, item: _Item) -> None:
        """A caller stopped waiting: its request leaves the queue now."""
        if item in self._current:  # in the next batch, not yet running: it leaves that too
            self._current = [other for other in self._current if other is not item]
        elif item in self._waiting:
            self._waiting.remove(item)
        else:
            return  # running already
        self._on_depth(self.depth)

    def _take(self) -> list[_Item]:
        """The next batch: whole requests, at most ``max_batch`` rows (one larger request runs alone)."""
        batch: list[_Item] = []
        rows = 0
        now = time.perf_counter()
        while self._waiting:
            item = self._waiting[0]
            if batch and rows + len(item.rows) > self.max_batch:
                break
            batch.append(self._waiting.pop(0))
            rows += len(item.rows)
            item.waited = now - item.arrived
        self._on_depth(len(self._waiting) + len(batch))
        return batch

    def _launch(self, batch: list[_Item], joined: np.ndarray, assembly: float) -> None:
        start = time.perf_counter()
        self._running = self._loop.run_in_executor(self._pool, self.run, joined)
        self._running.add_done_callback(lambda fut: self._deliver(fut, batch, len(joined), start, assembly))

    def _deliver(self, fut: asyncio.Future, batch: list[_Item], rows: int, start: float, assembly: float) -> None:
        seconds = time.perf_counter() - start
        try:
            out = fut.result()
            if len(out) != rows:
                raise BadOutput(f"{self.name} returned {len(out)} output rows for a batch of {rows} inputs")
        except BaseException as exc:  # every caller in the batch hears about it
            if isinstance(exc, asyncio.CancelledError):
                exc = RuntimeError(f"the run of {self.name} was cancelled")
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            self._poke()
            return
        offset = 0
        for item in batch:
            n = len(item.rows)
            if not item.future.done():
                item.future.set_result(out[offset : offset + n])
            offset += n
        self._company = len(batch) > 1
        self._last_requests = len(batch)
        self._on_batch(BatchStats(rows=rows, requests=len(batch), seconds=seconds, assembly=assembly,
                                  waits=tuple(item.waited for item in batch)))
        self._poke()


__all__ = ["BadOutput", "BatchStats", "Batcher", "QueueFull", "ShuttingDown"]
