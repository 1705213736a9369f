"""Running the app under uvicorn: bind first (a taken port is a one-line error), then serve.

On SIGINT or SIGTERM the server is marked draining at once (``/readyz``
answers 503 from then on), uvicorn stops accepting connections and waits for
the requests in flight (each waiting on its batcher) before the lifespan
closes the batchers, which finish anything still queued.

The server's own limits (admission, queue, body size) decide every refusal,
each a JSON answer counted in ``/metrics``: uvicorn's ``limit_concurrency``,
which answers plain-text 503s the app never sees, is not used.

``workers > 1``: the parent binds the socket, then starts that many worker
processes (``spawn``, so no ONNX Runtime state crosses a fork), each with its
own sessions and batchers, all accepting on the one shared socket; the
kernel hands each new connection to one of them. The parent forwards SIGTERM
and SIGINT to the workers, waits for them to drain, and restarts a worker
that dies on its own.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..errors import RuntimeInputError
from .app import ServeConfig, Server
from .models import ServedModel, load_models

log = logging.getLogger("zoo.serve")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket, or a clear error when the address is taken or not ours."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit TCP_NODELAY. Without it an answer's body, written after its headers,
    # waits for the client's delayed ACK of the headers: 40 ms added to every keep-alive request on Linux.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise RuntimeInputError(f"port {port} on {host} is already in use; choose another with --port") from None
        raise RuntimeInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def uvicorn_server(server: Server, config: ServeConfig, log_level: str = "warning") -> Any:
    """A ``uvicorn.Server`` for ``server``'s app that marks it draining the moment a signal arrives."""
    import uvicorn

    class Draining(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            server.begin_drain()
            super().handle_exit(sig, frame)

    uv_config = uvicorn.Config(
        server.app(),
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=int(config.timeout) + 5,
        access_log=log_level in ("debug", "info"),
        server_header=False,
        backlog=2048,
    )
    return Draining(uv_config)


def _announce_generic(models: Sequence[ServedModel], announce: Callable[[str], None]) -> None:
    for served in models:
        if served.generic:
            announce(f"{served.name}: no zoo metadata in the file; guessed {', '.join(served.model.guessed)}"
                     " (ImageNet mean/std, class indices as labels)")


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(
    models: Sequence[ServedModel],
    config: ServeConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
    announce: Callable[[str], None] = print,
) -> None:
    """Serve ``models`` in this process until interrupted; ``announce`` gets the URL once the socket listens."""
    sock = bind(host, port)
    _announce_generic(models, announce)
    announce(f"serving {', '.join(m.name for m in models)} on {_url(host, sock.getsockname()[1])} (Ctrl-C to stop)")
    uvicorn_server(Server(models, config), config, log_level).run(sockets=[sock])


@dataclass
class WorkerSpec:
    """What a worker process needs to open its own models and serve them (picklable)."""

    model_args: Sequence[str]
    config: ServeConfig
    provider: str = "auto"
    threads: int | None = None
    log_level: str = "warning"


def _worker(spec: WorkerSpec, sock: socket.socket) -> None:
    models = load_models(spec.model_args, provider=spec.provider, threads=spec.threads)
    uvicorn_server(Server(models, spec.config), spec.config, spec.log_level).run(sockets=[sock])


def serve_workers(
    spec: WorkerSpec,
    workers: int,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    announce: Callable[[str], None] = print,
) -> int:
    """Serve with ``workers`` processes on one port until interrupted; the exit status."""
    checked = load_models(spec.model_args, provider=spec.provider, threads=spec.threads)
    _announce_generic(checked, announce)
    names = ", ".join(m.name for m in checked)
    del checked  # each worker opens its own sessions
    sock = bind(host, port)
    context = multiprocessing.get_context("spawn")
    stopping: list[int] = []

    def start() -> Any:
        proc = context.Process(target=_worker, args=(spec, sock), name="zoo-serve-worker")
        proc.start()
        return proc

    def stop(sig: int, frame: Any) -> None:
        stopping.append(sig)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: each worker drains, then exits

    procs = [start() for _ in range(workers)]
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    announce(f"serving {names} on {_url(host, sock.getsockname()[1])} with {workers} worker processes (Ctrl-C to stop)")
    try:
        while any(proc.is_alive() for proc in procs) or not stopping:
            for i, proc in enumerate(procs):
                if not proc.is_alive() and not stopping:
                    log.error("worker %d (pid %s) ended with status %s; starting another", i, proc.pid, proc.exitcode)
                    announce(f"worker pid {proc.pid} ended with status {proc.exitcode}; starting another")
                    procs[i] = start()
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    return 0 if all(proc.exitcode in (0, -signal.SIGTERM, -signal.SIGINT) for proc in procs) else 1


__all__ = ["WorkerSpec", "bind", "serve", "serve_workers", "uvicorn_server"]
