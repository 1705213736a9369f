"""The runtime's commands, ``predict`` (for .onnx files) and ``serve``, in click.

This is the one module outside ``zoo/cli/`` that imports click, on purpose:
the torch-free distribution ``zoo-runtime`` (packaging/zoo-runtime) ships
this package alone, so its console script ``zoo-runtime`` needs these
commands here, without zoo's plugin manager (pluggy) or torch. ``zoo serve``
in the full CLI is the same command object, so the two never drift apart.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable

import click

from .errors import RuntimeInputError

TOKEN_ENV = "ZOO_SERVE_TOKEN"
ONNX_BATCH = 32  # images per session.run for an .onnx file when --batch-size is not given


def floats(value: str | None, option: str) -> list[float] | None:
    """``"0.5,0.5,0.5"`` -> floats, or a usage error naming ``option``."""
    if value is None:
        return None
    try:
        numbers = [float(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}", param_hint=option) from None
    if not all(math.isfinite(v) for v in numbers):  # float() takes "nan" and "inf": no mean or std is either
        raise click.BadParameter(f"expected finite numbers, got {value!r}", param_hint=option)
    return numbers


def show_predictions(predictor: Any, inputs: Iterable[str], *, top_k: int, batch_size: int, as_json: bool,
                     threshold: float = 0.5) -> None:
    """Print what ``predictor`` says about image files and folders (reconstruction error for autoencoders).

    Unreadable files are left out and reported on stderr in one line (count
    by reason, the first names); only when none is readable is it an error.
    """
    from .skips import SkipReport

    skipped = SkipReport()
    # --json: {"predictions": [...], "skipped": {count, by_reason, files}}, as every command's skipped key.
    predictor.threshold = threshold  # multi-label models give every label at or above it
    if predictor.task == "reconstruction":
        rows = predictor.reconstruct(inputs, batch_size=batch_size, skipped=skipped)
        if as_json:
            click.echo(json.dumps({"predictions": [{"input": p, "reconstruction_mse": e} for p, _, e in rows],
                                   "skipped": skipped.to_dict()}, indent=2))
        else:
            for path, _, err in rows:
                click.echo(f"{path}: reconstruction error (MSE) {err:.6f}")
    else:
        predictions = predictor.predict(inputs, top_k=top_k, batch_size=batch_size, skipped=skipped)
        if as_json:
            click.echo(json.dumps({"predictions": [p.to_dict() for p in predictions], "skipped": skipped.to_dict()},
                                  indent=2))
        else:
            for pred in predictions:
                ranked = ", ".join(f"{label} {prob:.4f}" for label, prob in zip(pred.labels, pred.probabilities))
                click.echo(f"{pred.source}: {ranked or f'no label at or above {threshold:g}'}")
    if skipped:
        click.echo(f"zoo: {skipped.describe()}", err=True)


class RuntimeGroup(click.Group):
    """Shows the runtime's input errors as one line and exit status 1, as ``zoo`` does."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RuntimeInputError as exc:
            raise click.ClickException(str(exc)) from None


def predict_options(function: Any) -> Any:
    """The options of ``predict`` shared by ``zoo-runtime predict`` and ``zoo predict``."""
    options = [
        click.argument("model", metavar="SOURCE"),
        click.argument("inputs", nargs=-1, required=True),
        click.option("--top-k", "-k", type=click.IntRange(min=1), default=5, show_default=True,
                     help="Classes to show per image."),
        click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
                     help="Multi-label models: show every label at least this probable."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text."),
        click.option("--batch-size", type=click.IntRange(min=1),
                     help="Images per batch [.onnx files: 32; checkpoints: as many as fit --memory-mb]."),
        click.option("--provider", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                     help="ONNX Runtime provider (for .onnx files)."),
        click.option("--threads", type=int, help="ONNX Runtime intra-op threads."),
        click.option("--size", help="Input size N or HxW, for .onnx files without zoo metadata."),
        click.option("--mean", help="Normalisation mean, e.g. 0.485,0.456,0.406 (files without metadata)."),
        click.option("--std", help="Normalisation std, e.g. 0.229,0.224,0.225 (files without metadata)."),
        click.option("--labels", help="Class names: a file (one per line, or a JSON list) or a comma-separated list."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@click.command("predict")
@predict_options
def predict_command(model: str, inputs: tuple[str, ...], top_k: int, as_json: bool, batch_size: int, provider: str,
                    threads: int | None, size: str | None, mean: str | None, std: str | None, labels: str | None,
                    threshold: float) -> None:
    """Predict the classes of INPUTS (image files or folders) with SOURCE, an .onnx file."""
    from .model import load

    predictor = load(model, provider=provider, threads=threads, size=size, mean=floats(mean, "--mean"),
                     std=floats(std, "--std"), labels=labels)
    show_predictions(predictor, inputs, top_k=top_k, batch_size=batch_size or ONNX_BATCH, as_json=as_json,
                     threshold=threshold)


@click.command("serve")
@click.argument("models", nargs=-1, required=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 opens it to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free one).")
@click.option("--max-batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="Most images in one session.run; 1 turns batching off.")
@click.option("--max-wait-ms", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Longest a request waits for others to share its batch.")
@click.option("--queue-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Requests waiting per model; beyond it, 503 with Retry-After at once.")
@click.option("--timeout", type=click.FloatRange(min=0.001), default=30.0, show_default=True,
              help="Seconds a request may wait for its answer (then 504).")
@click.option("--max-body-mb", type=click.FloatRange(min=0.001), default=10.0, show_default=True,
              help="Largest request body, in MiB (then 413).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=16_000_000, show_default=True,
              help="Largest image, width x height, decoded (then 413; the decompression-bomb guard).")
@click.option("--max-decoding", type=click.IntRange(min=1), default=32, show_default=True,
              help="Requests per model read and decoded at once; beyond it, 503 with Retry-After at once.")
@click.option("--exact-decode", is_flag=True,
              help="Decode every pixel of large JPEGs (default: libjpeg's draft scaling to the model's size).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes sharing the port, each with its own sessions and batchers.")
@click.option("--top-k", type=click.IntRange(1, 1000), default=5, show_default=True, help="Default classes per answer.")
@click.option("--token", envvar=TOKEN_ENV, show_envvar=True,
              help="Require 'Authorization: Bearer TOKEN' on the API (probes and the page stay open).")
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
              help="Allow browser calls from ORIGIN (repeatable); no CORS headers without it.")
@click.option("--provider", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="ONNX Runtime execution provider.")
@click.option("--threads", type=int, help="ONNX Runtime intra-op threads per model.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="warning",
              show_default=True, help="uvicorn's log level; info shows each request.")
def serve_command(models: tuple[str, ...], host: str, port: int, max_batch: int, max_wait_ms: float, queue_size: int,
                  timeout: float, max_body_mb: float, max_pixels: int, max_decoding: int, exact_decode: bool,
                  workers: int, top_k: int, token: str | None, cors_origins: tuple[str, ...], provider: str,
                  threads: int | None, log_level: str) -> None:
    """Serve MODELS (.onnx files, or NAME=FILE) over HTTP, with a dynamic batcher per model.

    \b
    POST /v1/models/NAME/predict   an image (raw bytes or multipart) -> top-k JSON
    POST /v2/models/NAME/infer     Open Inference Protocol tensors
    GET  /  /healthz  /readyz  /metrics  /v1/models  /v2/models/NAME
    """
    try:
        from .serve import ServeConfig, WorkerSpec, load_models, serve, serve_workers
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise click.ClickException(f"zoo serve needs {exc.name}: pip install 'zoo-runtime' (or zoo[serve])") from None
    if token is not None and not token.strip():
        raise click.BadParameter(f"is empty; give a token or unset {TOKEN_ENV}", param_hint="--token")
    config = ServeConfig(max_batch=max_batch, max_wait_ms=max_wait_ms, queue_size=queue_size, timeout=timeout,
                         max_body=int(max_body_mb * 1024 * 1024), max_pixels=max_pixels, top_k=top_k,
                         token=token.strip() if token else None, cors_origins=cors_origins,
                         max_decoding=max_decoding, draft=not exact_decode)
    announce = lambda line: click.echo(line, err=True)  # noqa: E731
    if workers > 1:
        if threads is None:  # share the cores out, rather than each worker's ONNX Runtime taking them all
            import os

            threads = max(1, (os.cpu_count() or 1) // workers)
        spec = WorkerSpec(list(models), config, provider=provider, threads=threads, log_level=log_level)
        raise SystemExit(serve_workers(spec, workers, host=host, port=port, announce=announce))
    served = load_models(models, provider=provider, threads=threads)
    serve(served, config, host=host, port=port, log_level=log_level, announce=announce)


@click.group("zoo-runtime", cls=RuntimeGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """zoo-runtime: predict with and serve exported zoo models (.onnx), without torch."""


main.add_command(predict_command)
main.add_command(serve_command)


if __name__ == "__main__":  # pragma: no cover
    main(prog_name="zoo-runtime")
