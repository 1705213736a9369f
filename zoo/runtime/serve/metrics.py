"""The server's Prometheus metrics, in a registry of its own (one per app, so tests count alone)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
# Stages run from microseconds (assembly, encode) to seconds (a queue wait under load).
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0)
# Where a request's time goes, in order; docs/deploy.md says what each one covers.
STAGES = ("receive", "decode", "resize", "queue_wait", "batch_assembly", "inference", "encode", "send")


@dataclass
class Metrics:
    """Requests, errors, latency, batch sizes and queue depth, labelled by model."""

    registry: Any
    requests: Any
    errors: Any
    latency: Any
    batch_size: Any
    batch_seconds: Any
    queue_depth: Any
    stages: Any
    responses: Any
    decoding: Any
    restarts: Any

    @classmethod
    def create(cls) -> "Metrics":
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter("zoo_requests", "Inference requests answered, by model, endpoint and status code.",
                             ["model", "endpoint", "code"], registry=registry),
            errors=Counter("zoo_request_errors", "Inference requests answered with an error, by reason.",
                           ["model", "endpoint", "reason"], registry=registry),
            latency=Histogram("zoo_request_latency_seconds", "Time from request to answer, successful requests.",
                              ["model", "endpoint"], buckets=LATENCY_BUCKETS, registry=registry),
            batch_size=Histogram("zoo_batch_size", "Rows in each batch sent to the model.", ["model"],
                                 buckets=BATCH_BUCKETS, registry=registry),
            batch_seconds=Histogram("zoo_batch_run_seconds", "Seconds each batch took in session.run.", ["model"],
                                    buckets=LATENCY_BUCKETS, registry=registry),
            queue_depth=Gauge("zoo_queue_depth", "Requests waiting for a batch.", ["model"], registry=registry),
            stages=Histogram("zoo_stage_seconds", "Seconds a request spent in each stage: " + ", ".join(STAGES) + ".",
                             ["model", "stage"], buckets=STAGE_BUCKETS, registry=registry),
            responses=Counter("zoo_http_responses", "Every HTTP answer of the server, from any layer, by status code.",
                              ["code"], registry=registry),
            decoding=Gauge("zoo_decoding", "Requests admitted and being read or decoded.", ["model"], registry=registry),
            restarts=Counter("zoo_batcher_restarts", "Times a model's batcher died and was restarted.", ["model"],
                             registry=registry),
        )

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
