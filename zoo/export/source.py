"""What gets exported: a checkpoint, a zoo .safetensors file, or a registry name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zoo.errors import CheckpointError, ExportError, UnknownModelError
from zoo.registry import model_info
from zoo.text import looks_like_path

AUTOENCODER_TAG = "autoencoder"


def load_source(
    source: str | os.PathLike,
    *,
    pretrained: bool | str = False,
    num_classes: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """``(model, config)`` for a checkpoint directory, a zoo ``.safetensors`` file or a model name.

    A name builds the registry's model (with its pretrained weights when
    ``pretrained`` is set) and a fresh config for it.
    """
    from zoo import checkpoint

    path = Path(source)
    if path.exists() or path.with_name(f".{path.name}.old").is_dir():
        if pretrained or num_classes is not None or model_kwargs:
            raise ExportError("--pretrained, --num-classes and --model-arg apply to model names, not checkpoints")
        model, config = checkpoint.load_checkpoint(path)
        return model, config
    from zoo.factory import create_model
    from zoo.plugins import get_spec

    try:
        spec = get_spec(str(source))  # unknown names fail here with suggestions
    except UnknownModelError:
        if looks_like_path(source):
            raise CheckpointError(f"checkpoint {str(source)!r} does not exist") from None
        raise
    model = create_model(spec, num_classes=num_classes, pretrained=pretrained, **(model_kwargs or {}))
    model.eval()
    # The set of weights that loaded says what the outputs mean and how inputs are normalised.
    tag = (model_info(model).pretrained or {}).get("tag")
    weights = next((w for w in spec.weights if w.tag == tag), None) if pretrained else None
    norm: dict[str, Any] = {}
    if weights is not None:
        norm = {"mean": weights.mean, "std": weights.std, "input_size": weights.input_size}
        if weights.class_names and num_classes in (None, len(weights.class_names)):
            norm["class_names"] = list(weights.class_names)
    config = checkpoint.make_config(model, **norm)
    return model, config


def is_autoencoder(config: dict[str, Any]) -> bool:
    """Whether the config describes an autoencoder that reconstructs (exported as such).

    An autoencoder architecture built with classes is its encoder plus a
    classifier head, and exports as a classifier.
    """
    from zoo.plugins import get_spec

    if int(config.get("num_classes") or 0) > 0:
        return False
    try:
        return AUTOENCODER_TAG in get_spec(config["architecture"]).tags
    except Exception:  # an architecture this install does not know: treat as a classifier
        return False


def forward_module(model: Any, config: dict[str, Any]) -> tuple[Any, str]:
    """The module to trace and its task: the classifier itself, or an autoencoder's reconstruction."""
    if not is_autoencoder(config):
        return model, "classification"
    import torch

    reconstruct = _reconstruction_fn(model)
    if reconstruct is None:
        raise ExportError(
            f"{config['architecture']} is tagged autoencoder but has no reconstruct(), decode(encode()) or"
            " encoder/decoder modules to export"
        )

    class Reconstruction(torch.nn.Module):
        """Input image -> reconstructed image, the forward an autoencoder is served with."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return _reconstruction_fn(self.inner)(x)

    return Reconstruction(model).eval(), "reconstruction"


def _reconstruction_fn(model: Any):
    for name in ("reconstruct", "forward_reconstruction"):
        if callable(getattr(model, name, None)):
            return getattr(model, name)
    if callable(getattr(model, "encode", None)) and callable(getattr(model, "decode", None)):
        return lambda x: model.decode(model.encode(x))
    if hasattr(model, "encoder") and hasattr(model, "decoder"):
        return lambda x: model.decoder(model.encoder(x))
    return None
