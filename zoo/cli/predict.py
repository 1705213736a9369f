"""``zoo predict``: class probabilities for images, from a checkpoint or an ``.onnx`` file.

An ``.onnx`` model runs in :mod:`zoo.runtime` and never imports torch; a
checkpoint runs its PyTorch model with the same preprocessing and ranking.
"""

from __future__ import annotations

import json

import click


def _floats(value: str | None, option: str) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}", param_hint=option) from None


@click.command("predict")
@click.argument("model")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--top-k", "-k", type=int, default=5, show_default=True, help="Classes to show per image.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--batch-size", type=int,
              help="Images per batch [checkpoints: as many as fit --memory-mb, at most 256; .onnx files: 32].")
@click.option("--memory-mb", type=float, default=512, show_default=True,
              help="Memory budget of one batch's activations (checkpoints).")
@click.option("--provider", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="ONNX Runtime provider (for .onnx models).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="PyTorch device (for checkpoints).")
@click.option("--threads", type=int, help="ONNX Runtime intra-op threads.")
@click.option("--size", help="Input size N or HxW, for .onnx files without zoo metadata.")
@click.option("--mean", help="Normalisation mean, e.g. 0.485,0.456,0.406 (files without metadata).")
@click.option("--std", help="Normalisation std, e.g. 0.229,0.224,0.225 (files without metadata).")
@click.option("--labels", help="Class names: a file (one per line, or a JSON list) or a comma-separated list.")
def predict_command(model: str, inputs: tuple[str, ...], top_k: int, as_json: bool, batch_size: int | None,
                    memory_mb: float, provider: str,
                    device: str, threads: int | None, size: str | None, mean: str | None, std: str | None,
                    labels: str | None) -> None:
    """Predict the classes of INPUTS (image files or folders) with MODEL (a checkpoint or .onnx file)."""
    if top_k < 1:
        raise click.BadParameter("must be at least 1", param_hint="--top-k")
    if model.lower().endswith(".onnx"):
        from zoo.runtime import load

        predictor = load(model, provider=provider, threads=threads, size=size, mean=_floats(mean, "--mean"),
                         std=_floats(std, "--std"), labels=labels)
    else:
        if any(v is not None for v in (size, mean, std, labels)):
            raise click.UsageError("--size/--mean/--std/--labels apply to .onnx files; a checkpoint carries its own")
        from zoo.export.predict import TorchModel

        predictor = TorchModel(model, device=device)
        batch_size = batch_size or predictor.budget_batch_size(memory_mb)
    batch_size = batch_size or 32
    from zoo.runtime.skips import SkipReport

    skipped = SkipReport()
    _predict(predictor, inputs, top_k, batch_size, as_json, skipped)  # none readable: an error naming the reasons
    if skipped:
        click.echo(f"zoo: {skipped.describe()}", err=True)


def _predict(predictor, inputs: tuple[str, ...], top_k: int, batch_size: int, as_json: bool, skipped) -> None:
    if predictor.task == "reconstruction":
        rows = predictor.reconstruct(inputs, batch_size=batch_size, skipped=skipped)
        if as_json:
            click.echo(json.dumps([{"input": p, "reconstruction_mse": e} for p, _, e in rows], indent=2))
        else:
            for path, _, err in rows:
                click.echo(f"{path}: reconstruction error (MSE) {err:.6f}")
        return
    predictions = predictor.predict(inputs, top_k=top_k, batch_size=batch_size, skipped=skipped)
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in predictions], indent=2))
        return
    for pred in predictions:
        ranked = ", ".join(f"{label} {prob:.4f}" for label, prob in zip(pred.labels, pred.probabilities))
        click.echo(f"{pred.source}: {ranked}")
