"""Running the app under uvicorn: bind first (a taken port is a one-line error), then serve.

On SIGINT or SIGTERM uvicorn stops accepting connections and waits for the
requests in flight (each waiting on its batcher) before the lifespan closes the
batchers, which finish anything still queued.
"""

from __future__ import annotations

import socket
from typing import Callable, Sequence

from ..errors import RuntimeInputError
from .app import ServeConfig, Server
from .models import ServedModel


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket, or a clear error when the address is taken or not ours."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise RuntimeInputError(f"port {port} on {host} is already in use; choose another with --port") from None
        raise RuntimeInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve(
    models: Sequence[ServedModel],
    config: ServeConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
    announce: Callable[[str], None] = print,
) -> None:
    """Serve ``models`` until interrupted; ``announce`` gets the URL once the socket listens."""
    import uvicorn

    sock = bind(host, port)
    bound = sock.getsockname()[1]
    server = Server(models, config)
    uv_config = uvicorn.Config(
        server.app(),
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=int(config.timeout) + 5,
        # connections beyond the queues' room are refused by uvicorn with a 503 at once
        limit_concurrency=max(128, 4 * config.queue_size * len(models)),
        access_log=log_level in ("debug", "info"),
        server_header=False,
    )
    shown = f"[{host}]" if ":" in host else host
    for served in models:
        if served.generic:
            announce(f"{served.name}: no zoo metadata in the file; guessed {', '.join(served.model.guessed)}"
                     " (ImageNet mean/std, class indices as labels)")
    announce(f"serving {', '.join(m.name for m in models)} on http://{shown}:{bound}/ (Ctrl-C to stop)")
    uvicorn.Server(uv_config).run(sockets=[sock])

