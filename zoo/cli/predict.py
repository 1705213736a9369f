"""``zoo predict``: class probabilities for images, from a checkpoint or an ``.onnx`` file.

An ``.onnx`` model runs in :mod:`zoo.runtime` and never imports torch; a
checkpoint runs its PyTorch model with the same preprocessing and ranking.
"""

from __future__ import annotations

import click

from zoo.cli._options import amp_option, device_option, memory_option
from zoo.runtime.cli import ONNX_BATCH, floats, predict_options, show_predictions


def provider_for_device(device: str, provider: str) -> str:
    """The ONNX Runtime provider that ``--device`` asks for (with ``--provider``, the two must agree)."""
    from zoo.devices import onnx_provider

    device = (device or "auto").strip().lower()
    if device == "auto":
        return provider
    if device == "mps":
        raise click.UsageError("--device mps: ONNX Runtime has no MPS provider here; use --device cpu or auto")
    if device.startswith("cuda:") and device != "cuda:0":
        raise click.UsageError(f"--device {device}: an .onnx model runs on the first CUDA device; use --device cuda")
    wanted = onnx_provider(device)
    if provider not in ("auto", wanted):
        raise click.UsageError(f"--device {device} and --provider {provider} disagree; give one of them")
    return wanted


@click.command("predict")
@predict_options
@device_option()
@amp_option()
@memory_option()
@click.option("--tta", help="Test-time augmentation: flip, crops (five crops) or flip,crops; probabilities averaged.")
def predict_command(model: str, inputs: tuple[str, ...], top_k: int, as_json: bool, batch_size: int | None,
                    provider: str, device: str, amp: bool | None, memory_mb: float, threads: int | None, size: str | None,
                    mean: str | None, std: str | None, labels: str | None, threshold: float, tta: str | None) -> None:
    """Predict the classes of INPUTS (image files or folders) with SOURCE: a model name (its pretrained
    weights), a checkpoint or an .onnx file."""
    from zoo.runtime.tta import parse_tta

    modes = parse_tta(tta)  # a bad --tta fails before any model loads
    if model.lower().endswith(".onnx"):
        from zoo.runtime import load

        # --device is checked here as everywhere: cuda without CUDA in onnxruntime is refused, not run on the CPU.
        predictor = load(model, provider=provider_for_device(device, provider), threads=threads, size=size, mean=floats(mean, "--mean"),
                         std=floats(std, "--std"), labels=labels)
    else:
        if any(v is not None for v in (size, mean, std, labels)):
            raise click.UsageError("--size/--mean/--std/--labels apply to .onnx files; a checkpoint carries its own")
        from zoo.export.predict import TorchModel

        predictor = TorchModel(model, device=device, amp=amp)
        batch_size = batch_size or predictor.budget_batch_size(memory_mb)
    predictor.tta = modes
    if modes and predictor.task != "classification":
        raise click.UsageError(f"--tta averages class probabilities; {model} is a {predictor.task} model")
    show_predictions(predictor, inputs, top_k=top_k, batch_size=batch_size or ONNX_BATCH, as_json=as_json,
                     threshold=threshold)
