"""``zoo serve``: ONNX models over HTTP on Starlette and uvicorn, with a dynamic batcher per model.

    >>> from zoo.runtime.serve import ServeConfig, load_models, serve
    >>> serve(load_models(["model.onnx"]), ServeConfig(max_batch=16, max_wait_ms=5))

Needs starlette, uvicorn, prometheus-client and python-multipart besides the
runtime's own three packages (``pip install zoo-runtime``, see docs/deploy.md).
Importing this package imports none of them; the app and the server do.
"""

from __future__ import annotations

from .app import ServeConfig, create_app
from .batcher import Batcher, QueueFull
from .models import ServedModel, load_models
from .server import WorkerSpec, bind, serve, serve_workers

__all__ = ["Batcher", "QueueFull", "ServeConfig", "ServedModel", "WorkerSpec", "bind", "create_app", "load_models",
           "serve", "serve_workers"]
