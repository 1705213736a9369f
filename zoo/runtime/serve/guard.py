"""An ASGI middleware for what every request must pass: the token and the body size.

It is also the outermost layer, so it sees every answer of the server: it
counts each status code (``zoo_http_responses_total``) and times the send
stage of the inference requests (``zoo_stage_seconds{stage="send"}``).

Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``, so request bodies
stream through untouched and a refusal costs no body read. A declared
``Content-Length`` over the limit is refused before the body is read; a
chunked body is counted as it arrives and refused once it passes the limit.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any, Awaitable, Callable

# Probes and the page itself need no token (the page asks for it and sends it with each call).
MODEL_KEY = "zoo.model"  # where a request's scope names its model, for the send stage's label
OPEN_PATHS = frozenset({"/", "/app.js", "/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"})


class BodyTooLarge(Exception):
    """A request body passed the server's size limit while it was being read."""


class Guard:
    """Checks ``Authorization: Bearer <token>`` (when a token is set) and caps body sizes."""

    def __init__(self, app: Any, *, token: str | None, max_body: int, metrics: Any = None) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.max_body = int(max_body)
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.metrics is not None:
            send = self._observed(scope, send)
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        if self.token is not None and scope["path"] not in OPEN_PATHS and scope["method"] != "OPTIONS":
            if not self._authorised(headers.get("authorization", b"")):
                return await _refuse(send, 401, "a bearer token is required: send 'Authorization: Bearer TOKEN'",
                                     [(b"www-authenticate", b'Bearer realm="zoo"')])
        length = headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await _refuse(send, 400, "the Content-Length header is not a number")
            if declared > self.max_body:
                return await _refuse(send, 413, f"the body is {declared:,} bytes; this server takes at most {self.max_body:,}")
        return await self.app(scope, self._counting(receive), send)

    def _authorised(self, header: bytes) -> bool:
        scheme, _, given = header.partition(b" ")
        # compare_digest takes the same time wherever the first wrong byte is
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token)

    def _observed(self, scope: dict, send: Callable) -> Callable:
        """``send``, counting the status and timing the sending of models' answers."""
        started = [0.0]

        async def observed(message: dict) -> None:
            if message["type"] == "http.response.start":
                self.metrics.responses.labels(str(message["status"])).inc()
                started[0] = time.perf_counter()
            await send(message)
            model = scope.get(MODEL_KEY)
            if model is not None and message["type"] == "http.response.body" and not message.get("more_body"):
                self.metrics.stages.labels(model, "send").observe(time.perf_counter() - started[0])

        return observed

    def _counting(self, receive: Callable[[], Awaitable[dict]]) -> Callable[[], Awaitable[dict]]:
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(f"the body passed this server's limit of {self.max_body:,} bytes")
            return message

        return counted


async def _refuse(send: Callable, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
