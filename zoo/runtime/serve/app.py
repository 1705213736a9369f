"""The Starlette app: zoo's own ``/v1`` API, the Open Inference Protocol ``/v2``, probes, metrics, the page.

State (models, batchers, metrics) is made before the app and started and
stopped in its lifespan: at shutdown every batcher finishes what is queued
before the process ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import RuntimeInputError
from .batcher import Batcher, QueueFull, ShuttingDown
from .decode import DEFAULT_MAX_PIXELS, image_rows
from .guard import BodyTooLarge, Guard
from .metrics import Metrics
from .models import ServedModel

STATIC = Path(__file__).with_name("static")
PAGE_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


@dataclass
class ServeConfig:
    """The server's limits; the defaults are the CLI's."""

    max_batch: int = 8
    max_wait_ms: float = 5.0
    queue_size: int = 64
    timeout: float = 30.0
    max_body: int = 10 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    top_k: int = 5
    token: str | None = None
    cors_origins: Sequence[str] = ()
    retry_after: int = 1


class ApiError(Exception):
    """An answer other than 200: a status, a one-line message, maybe headers."""

    def __init__(self, status: int, message: str, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.reason, self.headers = status, message, reason, headers or {}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse(body, status_code=status, headers=headers)


class Server:
    """The routes, bound to the models and the config."""

    def __init__(self, models: Sequence[ServedModel], config: ServeConfig) -> None:
        self.models = {m.name: m for m in models}
        self.config = config
        self.metrics = Metrics.create()
        self.ready = False
        self.page = {name: (STATIC / name).read_bytes() for name in ("index.html", "app.js")}

    # -- lifecycle --------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any):
        for served in self.models.values():
            gauge = self.metrics.queue_depth.labels(served.name)
            sizes = self.metrics.batch_size.labels(served.name)
            seconds = self.metrics.batch_seconds.labels(served.name)

            def on_batch(stats, sizes=sizes, seconds=seconds) -> None:
                sizes.observe(stats.rows)
                seconds.observe(stats.seconds)

            served.batcher = Batcher(
                served.model.run, max_batch=self.config.max_batch, max_wait=self.config.max_wait_ms / 1000,
                queue_size=self.config.queue_size, on_batch=on_batch, on_depth=gauge.set,
            )
            served.batcher.start()
        self.ready = True
        try:
            yield
        finally:
            self.ready = False
            await asyncio.gather(*(m.batcher.close() for m in self.models.values() if m.batcher))

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.routing import Route

        routes = [
            Route("/", self.index), Route("/app.js", self.script),
            Route("/healthz", self.healthz), Route("/readyz", self.readyz),
            Route("/metrics", self.prometheus),
            Route("/v1/models", self.list_models),
            Route("/v1/models/{name}", self.v1_model),
            Route("/v1/models/{name}/predict", self.predict, methods=["POST"]),
            Route("/v2", self.v2_server), Route("/v2/health/live", self.healthz), Route("/v2/health/ready", self.readyz),
            Route("/v2/models/{name}", self.v2_model),
            Route("/v2/models/{name}/ready", self.v2_ready),
            Route("/v2/models/{name}/infer", self.infer, methods=["POST"]),
        ]
        middleware = []
        if self.config.cors_origins:  # no CORS headers at all unless asked for
            from starlette.middleware.cors import CORSMiddleware

            middleware.append(Middleware(CORSMiddleware, allow_origins=list(self.config.cors_origins),
                                         allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"]))
        app = Starlette(routes=routes, middleware=middleware, lifespan=self.lifespan,
                        exception_handlers={BodyTooLarge: self._too_large, 404: self._not_found, 405: self._not_allowed})
        return Guard(app, token=self.config.token, max_body=self.config.max_body)

    # -- probes, metrics, page -----------------------------------------------------

    async def index(self, request: Any) -> Any:
        from starlette.responses import Response

        return Response(self.page["index.html"], media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    async def script(self, request: Any) -> Any:
        from starlette.responses import Response

        return Response(self.page["app.js"], media_type="text/javascript; charset=utf-8", headers=PAGE_HEADERS)

    async def healthz(self, request: Any) -> Any:
        return _json({"status": "alive"})

    async def readyz(self, request: Any) -> Any:
        if self.ready:
            return _json({"status": "ready", "models": sorted(self.models)})
        return _json({"status": "not ready"}, 503)

    async def prometheus(self, request: Any) -> Any:
        from starlette.responses import Response

        body, kind = self.metrics.render()
        return Response(body, headers={"content-type": kind})

    async def list_models(self, request: Any) -> Any:
        return _json({"models": [m.describe() for m in self.models.values()]})

    async def v1_model(self, request: Any) -> Any:
        return await self._answer(request, "describe", lambda served: self._describe(served))

    async def v2_server(self, request: Any) -> Any:
        return _json({"name": "zoo", "version": _version(), "extensions": []})

    async def v2_model(self, request: Any) -> Any:
        return await self._answer(request, "metadata", self._v2_metadata)

    async def v2_ready(self, request: Any) -> Any:
        served = self._find(request)
        if served is None:
            return self._unknown(request)
        ready = self.ready and served.batcher is not None
        return _json({"name": served.name, "ready": ready}, 200 if ready else 503)

    async def _describe(self, served: ServedModel) -> Any:
        return served.describe()

    async def _v2_metadata(self, served: ServedModel) -> Any:
        return served.v2_metadata()

    # -- inference ------------------------------------------------------------------

    async def predict(self, request: Any) -> Any:
        async def work(served: ServedModel) -> dict[str, Any]:
            if served.model.task != "classification":
                raise ApiError(400, f"{served.name} is a {served.model.task} model; send tensors to /v2/models/{served.name}/infer", "task")
            top_k = _top_k(request, self.config.top_k)
            threshold = _threshold(request, served.model.threshold)
            await self._run(served, None)  # a full queue refuses before the body is read or decoded
            data = await _image_bytes(request)
            start = time.perf_counter()
            from starlette.concurrency import run_in_threadpool

            try:
                rows = await run_in_threadpool(image_rows, data, served.model.preprocessing, self.config.max_pixels)
            except RuntimeInputError as exc:
                raise ApiError(400, str(exc), "bad_image") from None
            decoded = time.perf_counter()
            logits = await self._run(served, rows)
            done = time.perf_counter()
            pred = served.model.top_k(served.model.scores(logits), ["upload"], top_k, threshold=threshold)[0]
            answer = pred.to_dict()
            answer.pop("input")
            return {
                "model": served.name, "version": served.version, "generic": served.generic, **answer,
                "timing_ms": {"decode": _ms(decoded - start), "inference": _ms(done - decoded), "total": _ms(done - start)},
            }

        return await self._answer(request, "predict", work)

    async def infer(self, request: Any) -> Any:
        async def work(served: ServedModel) -> dict[str, Any]:
            await self._run(served, None)
            rows, request_id = await _v2_tensor(request, served)
            out = np.asarray(await self._run(served, rows), dtype=np.float32)
            answer = {
                "model_name": served.name, "model_version": served.version,
                "outputs": [{"name": served.model.output_name, "datatype": "FP32", "shape": list(out.shape),
                             "data": out.ravel().tolist()}],
            }
            if request_id is not None:
                answer["id"] = request_id
            return answer

        return await self._answer(request, "infer", work)

    async def _run(self, served: ServedModel, rows: np.ndarray | None) -> np.ndarray | None:
        """``rows`` through the model's batcher; ``None`` only checks that the queue has room."""
        try:
            if rows is None:
                served.batcher.check_room()
                return None
            return await asyncio.wait_for(served.batcher.submit(rows), self.config.timeout)
        except QueueFull:
            raise ApiError(503, f"{served.name} is busy ({self.config.queue_size} requests queued); retry shortly",
                           "queue_full", {"retry-after": str(self.config.retry_after)}) from None
        except ShuttingDown:
            raise ApiError(503, "the server is shutting down", "shutting_down", {"retry-after": str(self.config.retry_after)}) from None
        except asyncio.TimeoutError:
            raise ApiError(504, f"no answer within the server's {self.config.timeout:g} s request timeout", "timeout") from None

    async def _answer(self, request: Any, endpoint: str, work: Any) -> Any:
        """Run ``work(model)`` and turn every outcome into one JSON answer, counted in the metrics."""
        start = time.perf_counter()
        served = self._find(request)
        label = served.name if served else "_unknown"
        try:
            if served is None:
                raise ApiError(404, self._unknown_text(request), "unknown_model")
            body, status, headers = await work(served), 200, None
        except ApiError as exc:
            body, status, headers = {"error": exc.message}, exc.status, exc.headers
            self.metrics.errors.labels(label, endpoint, exc.reason).inc()
        except BodyTooLarge as exc:
            body, status, headers = {"error": str(exc)}, 413, None
            self.metrics.errors.labels(label, endpoint, "too_large").inc()
        except RuntimeInputError as exc:  # the model refused the input
            body, status, headers = {"error": str(exc)}, 400, None
            self.metrics.errors.labels(label, endpoint, "bad_input").inc()
        except Exception as exc:  # a bug or a failing session: answer, count, keep serving
            text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            body, status, headers = {"error": f"internal error: {type(exc).__name__}: {text[:200]}"}, 500, None
            self.metrics.errors.labels(label, endpoint, "internal").inc()
        if endpoint in ("predict", "infer"):
            self.metrics.requests.labels(label, endpoint, str(status)).inc()
            if status == 200:
                self.metrics.latency.labels(label, endpoint).observe(time.perf_counter() - start)
        return _json(body, status, headers)

    # -- helpers --------------------------------------------------------------------

    def _find(self, request: Any) -> ServedModel | None:
        return self.models.get(request.path_params.get("name", ""))

    def _unknown_text(self, request: Any) -> str:
        name = str(request.path_params.get("name", ""))[:80]
        return f"no model named {name!r}; this server has {', '.join(sorted(self.models))}"

    def _unknown(self, request: Any) -> Any:
        return _json({"error": self._unknown_text(request)}, 404)

    async def _too_large(self, request: Any, exc: Exception) -> Any:
        return _json({"error": str(exc)}, 413)

    async def _not_found(self, request: Any, exc: Exception) -> Any:
        return _json({"error": f"no such endpoint {request.url.path[:100]!r}; see GET /v1/models"}, 404)

    async def _not_allowed(self, request: Any, exc: Exception) -> Any:
        return _json({"error": f"{request.method} is not allowed on {request.url.path[:100]!r}"}, 405)


async def _image_bytes(request: Any) -> bytes:
    """The image in a request: the raw body, or the first file of a multipart form."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=8)
        except BodyTooLarge:
            raise
        except Exception as exc:
            raise ApiError(400, f"the multipart form cannot be read: {str(exc)[:200]}", "bad_form") from None
        files = [v for v in form.values() if hasattr(v, "read")]
        if not files:
            raise ApiError(400, "the multipart form has no file; send the image as a file field", "bad_form")
        data = await files[0].read()
        await form.close()
        return data
    return await request.body()


async def _v2_tensor(request: Any, served: ServedModel) -> tuple[np.ndarray, Any]:
    """The one FP32 input tensor of a v2 infer request, checked against the model."""
    try:
        body = await request.json()
    except BodyTooLarge:
        raise
    except Exception:
        raise ApiError(400, "the body is not JSON; send {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}", "bad_json") from None
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ApiError(400, "give exactly one tensor in \"inputs\"", "bad_tensor")
    tensor = inputs[0]
    want = [-1, *served.model.preprocessing.input_size]
    if tensor.get("datatype") != "FP32":
        raise ApiError(400, f"datatype {tensor.get('datatype')!r} is not supported; this model takes FP32", "bad_tensor")
    shape = tensor.get("shape")
    if not isinstance(shape, list) or len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape) or shape[1:] != want[1:]:
        raise ApiError(400, f"shape {shape} does not fit; {served.name} takes {want} (N, C, H, W)", "bad_tensor")
    try:
        rows = np.asarray(tensor.get("data"), dtype=np.float32)
    except (TypeError, ValueError):
        raise ApiError(400, "\"data\" must be a list of numbers", "bad_tensor") from None
    if rows.size != int(np.prod(shape)):
        raise ApiError(400, f"\"data\" holds {rows.size} numbers; shape {shape} needs {int(np.prod(shape))}", "bad_tensor")
    request_id = body.get("id")
    return rows.reshape(shape), request_id if isinstance(request_id, (str, int)) else None


def _top_k(request: Any, default: int) -> int:
    raw = request.query_params.get("top_k")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 1000:
        raise ApiError(400, f"top_k must be a whole number from 1 to 1000, not {raw[:20]!r}", "bad_query")
    return value


def _threshold(request: Any, default: float) -> float:
    """``?threshold=`` of a multi-label model: the probability at which a label is given."""
    raw = request.query_params.get("threshold")
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ApiError(400, f"threshold must be a probability from 0 to 1, not {raw[:20]!r}", "bad_query")
    return value


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _version() -> str:
    from importlib import metadata

    for dist in ("zoo-runtime", "zoo"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def create_app(models: Sequence[ServedModel], config: ServeConfig | None = None) -> Any:
    """The ASGI app serving ``models``; run it with uvicorn (see :func:`zoo.runtime.serve.serve`)."""
    return Server(models, config or ServeConfig()).app()
