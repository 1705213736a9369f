"""The Starlette app: zoo's own ``/v1`` API, the Open Inference Protocol ``/v2``, probes, metrics, the page.

State (models, batchers, metrics) is made before the app and started and
stopped in its lifespan: at shutdown every batcher finishes what is queued
before the process ends. Readiness is false before start-up, as soon as
draining begins (:meth:`Server.begin_drain`, called on SIGTERM), and while
any model's batcher is being restarted after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .batcher import BatchStats, Batcher
from .decode import DEFAULT_MAX_PIXELS
from .guard import BodyTooLarge, Guard
from .handlers import Inference, json_response
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
    max_decoding: int = 32
    draft: bool = True


_json = json_response


class Server:
    """The routes, bound to the models and the config."""

    def __init__(self, models: Sequence[ServedModel], config: ServeConfig) -> None:
        self.models = {m.name: m for m in models}
        self.config = config
        self.metrics = Metrics.create()
        self.inference = Inference(self.models, config, self.metrics)
        self.ready = False
        self.draining = False
        self.page = {name: (STATIC / name).read_bytes() for name in ("index.html", "app.js")}

    # -- lifecycle --------------------------------------------------------------

    def begin_drain(self) -> None:
        """From now on ``/readyz`` answers 503, so a balancer stops sending; requests still get answers."""
        self.draining = True

    def not_ready(self) -> str | None:
        """Why the server is not ready, or None when it is."""
        if self.draining:
            return "draining: the server is shutting down"
        if not self.ready:
            return "starting"
        dead = sorted(m.name for m in self.models.values() if m.batcher is None or not m.batcher.alive)
        return f"restarting the batcher of {', '.join(dead)}" if dead else None

    def _batcher(self, served: ServedModel) -> Batcher:
        name = served.name
        metrics = self.metrics
        stages, sizes, seconds = metrics.stages, metrics.batch_size.labels(name), metrics.batch_seconds.labels(name)

        def on_batch(stats: BatchStats) -> None:
            sizes.observe(stats.rows)
            seconds.observe(stats.seconds)
            stages.labels(name, "inference").observe(stats.seconds)
            stages.labels(name, "batch_assembly").observe(stats.assembly)
            waited = stages.labels(name, "queue_wait")
            for wait in stats.waits:
                waited.observe(wait)

        return Batcher(
            served.model.run, max_batch=self.config.max_batch, max_wait=self.config.max_wait_ms / 1000,
            queue_size=self.config.queue_size, name=name, on_batch=on_batch,
            on_depth=metrics.queue_depth.labels(name).set, coming=lambda: self.inference.decoding[name],
            on_death=lambda error: metrics.restarts.labels(name).inc(),
        )

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any):
        self.inference.start()
        for served in self.models.values():
            served.batcher = self._batcher(served)
            served.batcher.start()
        self.ready = True
        try:
            yield
        finally:
            self.ready = False
            self.draining = True
            await asyncio.gather(*(m.batcher.close() for m in self.models.values() if m.batcher))
            self.inference.stop()

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
        handlers = {BodyTooLarge: self._too_large, 404: self._not_found, 405: self._not_allowed, Exception: self._crashed}
        app = Starlette(routes=routes, middleware=middleware, lifespan=self.lifespan, exception_handlers=handlers)
        return Guard(app, token=self.config.token, max_body=self.config.max_body, metrics=self.metrics)

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
        why = self.not_ready()
        if why is None:
            return _json({"status": "ready", "models": sorted(self.models)})
        return _json({"status": "not ready", "reason": why}, 503)

    async def prometheus(self, request: Any) -> Any:
        from starlette.responses import Response

        body, kind = self.metrics.render()
        return Response(body, headers={"content-type": kind})

    async def list_models(self, request: Any) -> Any:
        return _json({"models": [m.describe() for m in self.models.values()]})

    async def v1_model(self, request: Any) -> Any:
        return await self._answer(request, "describe", lambda request, served, clock: self._describe(served))

    async def v2_server(self, request: Any) -> Any:
        return _json({"name": "zoo", "version": _version(), "extensions": []})

    async def v2_model(self, request: Any) -> Any:
        return await self._answer(request, "metadata", lambda request, served, clock: self._v2_metadata(served))

    async def v2_ready(self, request: Any) -> Any:
        served = self._find(request)
        if served is None:
            return self._unknown(request)
        ready = self.not_ready() is None
        return _json({"name": served.name, "ready": ready}, 200 if ready else 503)

    async def _describe(self, served: ServedModel) -> Any:
        return served.describe()

    async def _v2_metadata(self, served: ServedModel) -> Any:
        return served.v2_metadata()

    # -- inference ------------------------------------------------------------------

    async def predict(self, request: Any) -> Any:
        return await self._answer(request, "predict", self.inference.predict)

    async def infer(self, request: Any) -> Any:
        return await self._answer(request, "infer", self.inference.infer)

    async def _answer(self, request: Any, endpoint: str, work: Any) -> Any:
        return await self.inference.answer(request, self._find(request), endpoint, work, self._unknown_text(request))

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

    async def _crashed(self, request: Any, exc: Exception) -> Any:
        """Whatever escaped the handlers: still a JSON 500 (Starlette logs the traceback)."""
        return _json({"error": f"internal error: {type(exc).__name__}"}, 500)


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
