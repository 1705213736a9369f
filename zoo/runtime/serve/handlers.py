"""One inference request, from admission to its JSON answer, each stage timed.

The order of work is the order of cost: a request is admitted (or refused
with a JSON 503 and ``Retry-After``) before its body is read, so the number
of bodies held and images decoded at once is bounded per model by
``max_decoding``, and the queue's room is reserved for every admitted
request, so nothing is decoded only to be refused. The body is read, decoded
(or, for v2, parsed) in the decode threads, queued in the model's batcher,
run, and answered. ``--timeout`` counts from the start of the request:
reading, decoding and waiting all spend it.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from ..errors import RuntimeInputError
from .batcher import BadOutput, QueueFull, ShuttingDown
from .decode import BadImage, ImageTooLarge, decode_rows
from .guard import MODEL_KEY, BodyTooLarge
from .models import ServedModel
from .parse import ApiError, image_bytes, threshold, top_k, v2_rows

class Clock:
    """A request's deadline and the seconds of each stage it went through."""

    def __init__(self, timeout: float) -> None:
        self.start = time.perf_counter()
        self.deadline = self.start + timeout
        self.timeout = timeout
        self.stages: dict[str, float] = {}

    def left(self) -> float:
        left = self.deadline - time.perf_counter()
        if left <= 0:
            raise asyncio.TimeoutError
        return left


class Inference:
    """The predict and infer flows for the models of one server."""

    def __init__(self, models: dict[str, ServedModel], config: Any, metrics: Any) -> None:
        self.models = models
        self.config = config
        self.metrics = metrics
        self.decoding = dict.fromkeys(models, 0)
        self.pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        workers = max(1, min(64, self.config.max_decoding * len(self.models)))
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zoo-decode")

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    # -- the two flows --------------------------------------------------------------

    async def predict(self, request: Any, served: ServedModel, clock: Clock) -> dict[str, Any]:
        if served.model.task != "classification":
            raise ApiError(400, f"{served.name} is a {served.model.task} model; send tensors to"
                           f" /v2/models/{served.name}/infer", "task")
        k = top_k(request, self.config.top_k)
        cut = threshold(request, served.model.threshold)
        rows = await self._decoded(served, clock, lambda: image_bytes(request), self._image)
        queued = time.perf_counter()
        logits = await self._infer(served, rows, clock)
        done = time.perf_counter()
        # scores: softmax, or a sigmoid per label for a multi-label model (its answer lists "labels")
        answer = served.model.top_k(served.model.scores(logits), ["upload"], k, threshold=cut)[0].to_dict()
        answer.pop("input")
        decode = clock.stages.get("decode", 0.0) + clock.stages.get("resize", 0.0)
        return {
            "model": served.name, "version": served.version, "generic": served.generic, **answer,
            "timing_ms": {"decode": _ms(decode), "inference": _ms(done - queued), "total": _ms(done - clock.start)},
        }

    async def infer(self, request: Any, served: ServedModel, clock: Clock) -> dict[str, Any]:
        rows, request_id = await self._decoded(served, clock, request.body, self._tensor)
        out = np.asarray(await self._infer(served, rows, clock), dtype=np.float32)
        if not np.isfinite(out).all():
            raise ApiError(500, f"{served.name} produced non-finite outputs (NaN or infinity) for this input", "bad_output")
        answer = {
            "model_name": served.name, "model_version": served.version,
            "outputs": [{"name": served.model.output_name, "datatype": "FP32", "shape": list(out.shape),
                         "data": out.ravel().tolist()}],
        }
        if request_id is not None:
            answer["id"] = request_id
        return answer

    # -- the stages -------------------------------------------------------------------

    def _image(self, served: ServedModel, data: bytes, clock: Clock) -> Any:
        rows, decode, resize = decode_rows(data, served.model.preprocessing, self.config.max_pixels, self.config.draft)
        clock.stages["decode"], clock.stages["resize"] = decode, resize
        return rows

    def _tensor(self, served: ServedModel, data: bytes, clock: Clock) -> Any:
        start = time.perf_counter()
        try:
            return v2_rows(data, served.name, served.model.preprocessing.input_size)
        finally:
            clock.stages["decode"] = time.perf_counter() - start

    def admit(self, served: ServedModel) -> None:
        """Take one of the model's decode places, or refuse now with a JSON 503."""
        retry = {"retry-after": str(self.config.retry_after)}
        batcher = served.batcher
        if batcher is None:
            raise ApiError(503, "the server is starting or shutting down", "shutting_down", retry)
        try:
            batcher.check_room()
        except ShuttingDown:
            raise ApiError(503, "the server is shutting down", "shutting_down", retry) from None
        except QueueFull:
            pass
        busy = self.decoding[served.name]
        if batcher.depth + busy >= self.config.queue_size:
            raise ApiError(503, f"{served.name} is busy ({self.config.queue_size} requests queued); retry shortly",
                           "queue_full", retry)
        if busy >= self.config.max_decoding:
            raise ApiError(503, f"{served.name} is busy ({busy} requests being decoded); retry shortly",
                           "decode_full", retry)
        self._set_decoding(served, busy + 1)

    def _leave(self, served: ServedModel) -> None:
        self._set_decoding(served, self.decoding[served.name] - 1)

    def _set_decoding(self, served: ServedModel, value: int) -> None:
        self.decoding[served.name] = value
        self.metrics.decoding.labels(served.name).set(value)

    async def _decoded(self, served: ServedModel, clock: Clock, receive: Callable, work: Callable) -> Any:
        """Admit, read the body (``await receive()``), then ``work(served, body, clock)`` in a decode thread."""
        self.admit(served)
        loop = asyncio.get_running_loop()
        job = None
        try:
            data = await asyncio.wait_for(receive(), clock.left())
            self.metrics.stages.labels(served.name, "receive").observe(time.perf_counter() - clock.start)
            job = self.pool.submit(work, served, data, clock)
            return await asyncio.wait_for(asyncio.wrap_future(job), clock.left())
        finally:
            if job is None or job.done():
                self._leave(served)
            else:  # the caller gave up; the place is free once the thread is done with the image
                job.add_done_callback(lambda _: loop.call_soon_threadsafe(self._leave, served))

    async def _infer(self, served: ServedModel, rows: np.ndarray, clock: Clock) -> np.ndarray:
        retry = {"retry-after": str(self.config.retry_after)}
        try:
            future = served.batcher.submit(rows)
        except QueueFull:
            raise ApiError(503, f"{served.name} is busy ({self.config.queue_size} requests queued); retry shortly",
                           "queue_full", retry) from None
        except ShuttingDown:
            raise ApiError(503, "the server is shutting down", "shutting_down", retry) from None
        return await asyncio.wait_for(future, clock.left())

    # -- the answer -------------------------------------------------------------------

    async def answer(self, request: Any, served: ServedModel | None, endpoint: str, work: Callable, unknown: str) -> Any:
        """Run ``work(request, model, clock)`` and turn every outcome into one JSON answer, counted and timed."""
        clock = Clock(self.config.timeout)
        label = served.name if served else "_unknown"
        request.scope[MODEL_KEY] = label
        status, headers = 200, None
        try:
            if served is None:
                raise ApiError(404, unknown, "unknown_model")
            body = await work(request, served, clock)
        except Exception as exc:
            body, status, headers, reason = self._refusal(exc, label)
            self.metrics.errors.labels(label, endpoint, reason).inc()
        start = time.perf_counter()
        try:
            response = json_response(body, status, headers)
        except ValueError as exc:  # a value JSON cannot hold
            status = 500
            response = json_response({"error": f"internal error: the answer of {label} cannot be encoded: {exc}"}, 500)
            self.metrics.errors.labels(label, endpoint, "encode").inc()
        if endpoint not in ("predict", "infer"):  # metadata: counted in zoo_http_responses_total only
            return response
        stages = self.metrics.stages
        for stage, seconds in clock.stages.items():
            stages.labels(label, stage).observe(seconds)
        stages.labels(label, "encode").observe(time.perf_counter() - start)
        self.metrics.requests.labels(label, endpoint, str(status)).inc()
        if status == 200:
            self.metrics.latency.labels(label, endpoint).observe(time.perf_counter() - clock.start)
        return response

    def _refusal(self, exc: Exception, label: str) -> tuple[dict[str, str], int, dict[str, str] | None, str]:
        """``(body, status, headers, reason)`` for a request that did not succeed."""
        if isinstance(exc, ApiError):
            return {"error": exc.message}, exc.status, exc.headers, exc.reason
        if isinstance(exc, asyncio.TimeoutError):
            return {"error": f"no answer within the server's {self.config.timeout:g} s request timeout"}, 504, None, "timeout"
        if isinstance(exc, BodyTooLarge):
            return {"error": str(exc)}, 413, None, "too_large"
        if isinstance(exc, ImageTooLarge):
            return {"error": str(exc)}, 413, None, "too_many_pixels"
        if isinstance(exc, RuntimeInputError):  # a bad image, or the model refused the input
            return {"error": str(exc)}, 400, None, "bad_image" if isinstance(exc, BadImage) else "bad_input"
        if isinstance(exc, BadOutput):
            return {"error": f"internal error: {exc}"}, 500, None, "bad_output"
        # a bug or a failing session: answer, count, keep serving
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return {"error": f"internal error in {label}: {type(exc).__name__}: {text[:200]}"}, 500, None, "internal"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    """A JSON answer; NaN and infinity are refused (ValueError), as JSON has no such numbers."""
    import json

    from starlette.responses import Response

    data = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    return Response(data, status_code=status, headers=headers, media_type="application/json")


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


__all__ = ["Clock", "Inference", "json_response"]
