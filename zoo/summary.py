"""Describe a built model: parameter counts, classifier, top-level layers."""

from __future__ import annotations

from typing import Any


def count_parameters(module: Any, trainable_only: bool = False) -> int:
    """Parameters of ``module``, counting shared tensors once."""
    seen: set[int] = set()
    total = 0
    for p in module.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def describe_model(model: Any, spec: Any = None) -> dict[str, Any]:
    """A JSON-friendly description of ``model`` for ``zoo info``."""
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    layers = []
    for name, child in model.named_children():
        layers.append(
            {"name": name, "type": type(child).__name__, "params": count_parameters(child)}
        )
    return {
        "params": count_parameters(model),
        "trainable_params": count_parameters(model, trainable_only=True),
        "num_features": getattr(model, "num_features", None),
        "classifier": spec.classifier if spec is not None else None,
        "classifier_repr": _short_repr(classifier),
        "layers": layers,
    }


def _short_repr(module: Any) -> str | None:
    if module is None:
        return None
    text = repr(module).replace("\n", " ")
    return " ".join(text.split())[:120]
