"""The dynamic batcher: who shares a batch, who gets which answer, and a full queue."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.runtime.serve.batcher import Batcher, QueueFull, ShuttingDown


class Recorder:
    """A stand-in model: doubles its input and remembers each batch's size."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.sizes: list[int] = []
        self.gate = gate

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.gate is not None:
            self.gate.wait(10)
        self.sizes.append(len(batch))
        return batch * 2


def rows(value: float, n: int = 1) -> np.ndarray:
    return np.full((n, 3), value, dtype=np.float32)


def test_requests_arriving_together_share_one_run_and_get_their_own_rows():
    async def scenario():
        model = Recorder()
        seen = []
        batcher = Batcher(model, max_batch=8, max_wait=0.2, queue_size=16, on_batch=seen.append)
        batcher.start()
        answers = await asyncio.gather(*(batcher.submit(rows(i)) for i in range(5)))
        await batcher.close()
        return model, seen, answers

    model, seen, answers = asyncio.run(scenario())
    assert model.sizes == [5]
    assert seen[0].requests == 5 and seen[0].rows == 5
    for i, answer in enumerate(answers):
        assert answer.shape == (1, 3) and np.all(answer == 2 * i)


def test_a_batch_holds_at_most_max_batch_rows_and_keeps_requests_whole():
    async def scenario():
        model = Recorder()
        batcher = Batcher(model, max_batch=4, max_wait=0.2, queue_size=16)
        batcher.start()
        answers = await asyncio.gather(batcher.submit(rows(1, 3)), batcher.submit(rows(2, 2)), batcher.submit(rows(3, 1)))
        await batcher.close()
        return model, answers

    model, answers = asyncio.run(scenario())
    assert model.sizes == [3, 3]  # 3 rows, then 2 + 1: the 2-row request is not split
    assert [a.shape[0] for a in answers] == [3, 2, 1]
    assert np.all(answers[1] == 4) and np.all(answers[2] == 6)


def test_max_batch_one_runs_every_request_alone():
    async def scenario():
        model = Recorder()
        batcher = Batcher(model, max_batch=1, max_wait=0.2, queue_size=16)
        batcher.start()
        await asyncio.gather(*(batcher.submit(rows(i)) for i in range(4)))
        await batcher.close()
        return model

    assert asyncio.run(scenario()).sizes == [1, 1, 1, 1]


def test_a_full_queue_refuses_at_once_and_close_finishes_the_queued():
    async def scenario():
        gate = threading.Event()
        model = Recorder(gate)
        batcher = Batcher(model, max_batch=1, max_wait=0, queue_size=2)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(rows(1)))
        while model.sizes == [] and batcher.depth:  # the worker takes the first request
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        queued = [asyncio.ensure_future(batcher.submit(rows(v))) for v in (2, 3)]
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull):
            await batcher.submit(rows(4))
        closing = asyncio.ensure_future(batcher.close())
        await asyncio.sleep(0.01)
        with pytest.raises(ShuttingDown):
            await batcher.submit(rows(5))
        gate.set()
        await closing
        return [float(a[0, 0]) for a in await asyncio.gather(first, *queued)], model.sizes

    answers, sizes = asyncio.run(scenario())
    assert answers == [2.0, 4.0, 6.0]  # nothing queued was dropped at shutdown
    assert sizes == [1, 1, 1]


def test_a_failing_run_answers_every_caller_in_the_batch():
    def broken(batch):
        raise RuntimeError("session failed")

    async def scenario():
        batcher = Batcher(broken, max_batch=4, max_wait=0.1, queue_size=4)
        batcher.start()
        results = await asyncio.gather(batcher.submit(rows(1)), batcher.submit(rows(2)), return_exceptions=True)
        await batcher.close()
        return results

    results = asyncio.run(scenario())
    assert all(isinstance(r, RuntimeError) for r in results)


def test_once_as_many_wait_as_the_last_batch_held_the_batch_runs_without_waiting_out_max_wait():
    async def scenario():
        model = Recorder()
        seen = []
        batcher = Batcher(model, max_batch=8, max_wait=30.0, queue_size=16, on_batch=seen.append)
        batcher.start()
        await asyncio.gather(*(batcher.submit(rows(i)) for i in range(3)))  # the first batch: 3 requests
        # two come back at once and the third a moment later: the two wait for it (the last batch held 3)
        first = [batcher.submit(rows(i)) for i in range(2)]
        await asyncio.sleep(0.05)
        await asyncio.gather(*first, batcher.submit(rows(2)))
        await batcher.close()
        return model, seen

    model, seen = asyncio.run(scenario())
    assert model.sizes == [3, 3]
    # the second batch ran when its third request arrived, not after the 30 s max_wait
    assert max(seen[1].waits) < 15


@settings(max_examples=40, deadline=None)
@given(
    max_batch=st.integers(1, 6),
    waves=st.lists(st.lists(st.integers(1, 8), min_size=1, max_size=6), min_size=1, max_size=4),
)
def test_every_request_gets_its_own_rows_back_in_batches_that_keep_the_limit(max_batch, waves):
    """For any request sizes and arrival waves: each answer is its own rows, requests are never split,
    a batch exceeds max_batch rows only when one request alone does, and requests run in arrival order."""

    class Tagged(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.order: list[float] = []

        def __call__(self, batch: np.ndarray) -> np.ndarray:
            self.order.extend(batch[:, 0].tolist())
            return super().__call__(batch)

    async def scenario():
        model = Tagged()
        seen = []
        batcher = Batcher(model, max_batch=max_batch, max_wait=0.001, queue_size=64, on_batch=seen.append)
        batcher.start()
        submitted, value = [], 0
        for wave in waves:
            for n in wave:
                value += 1
                submitted.append((value, n, batcher.submit(rows(value, n))))
            await asyncio.sleep(0)
        answers = [(v, n, await fut) for v, n, fut in submitted]
        await batcher.close()
        return model, seen, answers

    model, seen, answers = asyncio.run(scenario())
    for value, n, answer in answers:
        assert answer.shape == (n, 3) and np.all(answer == 2 * value)
    assert sum(s.rows for s in seen) == sum(n for _, n, _ in answers)
    for stats in seen:
        assert stats.rows <= max_batch or stats.requests == 1
    # arrival order: the values the model saw never go back
    assert model.order == sorted(model.order)
