"""``zoo predict``: class probabilities for images, from a checkpoint or an ``.onnx`` file.

An ``.onnx`` model runs in :mod:`zoo.runtime` and never imports torch; a
checkpoint runs its PyTorch model with the same preprocessing and ranking.
"""

from __future__ import annotations

import click

from zoo.cli._options import device_option, json_option
from zoo.runtime.cli import floats, show_predictions


@click.command("predict")
@click.argument("model", metavar="SOURCE")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--top-k", "-k", type=int, default=5, show_default=True, help="Classes to show per image.")
@json_option()
@click.option("--batch-size", type=int, default=32, show_default=True, help="Images per batch.")
@click.option("--provider", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="ONNX Runtime provider (for .onnx models).")
@device_option()
@click.option("--threads", type=int, help="ONNX Runtime intra-op threads.")
@click.option("--size", help="Input size N or HxW, for .onnx files without zoo metadata.")
@click.option("--mean", help="Normalisation mean, e.g. 0.485,0.456,0.406 (files without metadata).")
@click.option("--std", help="Normalisation std, e.g. 0.229,0.224,0.225 (files without metadata).")
@click.option("--labels", help="Class names: a file (one per line, or a JSON list) or a comma-separated list.")
def predict_command(model: str, inputs: tuple[str, ...], top_k: int, as_json: bool, batch_size: int, provider: str,
                    device: str, threads: int | None, size: str | None, mean: str | None, std: str | None,
                    labels: str | None) -> None:
    """Predict the classes of INPUTS (image files or folders) with SOURCE: a model name (its pretrained
    weights), a checkpoint or an .onnx file."""
    if top_k < 1:
        raise click.BadParameter("must be at least 1", param_hint="--top-k")
    if model.lower().endswith(".onnx"):
        from zoo.runtime import load

        predictor = load(model, provider=provider, threads=threads, size=size, mean=floats(mean, "--mean"),
                         std=floats(std, "--std"), labels=labels)
    else:
        if any(v is not None for v in (size, mean, std, labels)):
            raise click.UsageError("--size/--mean/--std/--labels apply to .onnx files; a checkpoint carries its own")
        from zoo.export.predict import TorchModel

        predictor = TorchModel(model, device=device)
    show_predictions(predictor, inputs, top_k=top_k, batch_size=batch_size, as_json=as_json)
