"""Classifier heads on top of any model under the classifier contract.

A linear head is the model's own classifier, reset for the new class count,
so the checkpoint is a plain one. An MLP head wraps the model in
:class:`HeadedModel`: ``backbone.forward_head(..., pre_logits=True)`` feeds a
small MLP with dropout. Its config entry (``{"type": "head", ...}``) lets
:func:`zoo.checkpoint.build_model` rebuild it anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

import torch
from torch import nn

from zoo.errors import ZooError
from zoo.registry import model_info


@dataclass(frozen=True)
class HeadSpec:
    """``linear`` or ``mlp`` with hidden widths and dropout."""

    kind: str = "linear"
    hidden: tuple[int, ...] = ()
    dropout: float = 0.0

    def describe(self) -> str:
        if self.kind == "linear":
            return "linear"
        return f"mlp:{','.join(map(str, self.hidden))} (dropout {self.dropout:g})"


def parse_head(text: str | None, dropout: float = 0.2) -> HeadSpec:
    """``"linear"`` or ``"mlp:512"`` / ``"mlp:512,128"`` (``"mlp"`` alone means 512)."""
    raw = (text or "linear").strip().lower()
    kind, _, sizes = raw.partition(":")
    if kind == "linear" and not sizes:
        return HeadSpec("linear")
    if kind != "mlp":
        raise ZooError(f"unknown head {text!r}; use 'linear' or 'mlp:SIZE' (e.g. mlp:512)")
    try:
        hidden = tuple(int(s) for s in sizes.split(",")) if sizes else (512,)
    except ValueError:
        raise ZooError(f"head sizes in {text!r} must be integers, e.g. mlp:512 or mlp:512,128") from None
    if any(h <= 0 for h in hidden):
        raise ZooError(f"head size must be a positive integer, got {text!r}; e.g. mlp:512")
    if not 0.0 <= dropout < 1.0:
        raise ZooError(f"head dropout must be in [0, 1), got {dropout}")
    return HeadSpec("mlp", hidden, float(dropout))


class MLPHead(nn.Sequential):
    """Linear + ReLU + Dropout per hidden width, then the output layer."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], num_classes: int, dropout: float = 0.0) -> None:
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity())
        super().__init__(*layers)


class HeadedModel(nn.Module):
    """A backbone (any classifier-contract model, its own classifier removed) plus a new head."""

    def __init__(self, backbone: nn.Module, head_spec: HeadSpec, num_classes: int) -> None:
        super().__init__()
        backbone.reset_classifier(0)
        self.backbone = backbone
        self.head_spec = head_spec
        self.num_features = int(backbone.num_features)
        self.num_classes = num_classes
        self.head = MLPHead(self.num_features, head_spec.hidden, num_classes, head_spec.dropout)
        info = model_info(backbone)
        if info is not None:  # the same record, with the head's adapter and class count
            self.zoo_info = replace(info, num_classes=num_classes, adapters=[*info.adapters, head_entry(head_spec)])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.backbone.forward_head(x, pre_logits=True)
        return x if pre_logits else self.head(x)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        ref = next(self.head.parameters(), None)
        self.head = MLPHead(self.num_features, self.head_spec.hidden, num_classes, self.head_spec.dropout)
        if ref is not None:
            self.head.to(ref.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def head_entry(head_spec: HeadSpec) -> dict[str, Any]:
    """The config.json ``adapters`` entry for a head."""
    return {"type": "head", "head": head_spec.kind, "hidden": list(head_spec.hidden), "dropout": head_spec.dropout}


def replace_head(model: nn.Module, num_classes: int, head: HeadSpec | str | None = None) -> nn.Module:
    """A fresh head for ``num_classes`` on ``model``; returns the (possibly wrapped) model."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ZooError(f"the head needs at least one class, got {num_classes!r}")
    spec = head if isinstance(head, HeadSpec) else parse_head(head)
    if spec.kind == "linear":
        model.reset_classifier(num_classes)
        info = model_info(model)
        if info is not None:
            info.num_classes = num_classes
        return model
    return HeadedModel(model, spec, num_classes)


def rebuild_head(model: nn.Module, entry: Mapping[str, Any]) -> nn.Module:
    """ADAPTERS["head"]: wrap a freshly built model the way the checkpoint's was."""
    spec = HeadSpec(str(entry.get("head", "mlp")), tuple(int(h) for h in entry.get("hidden", ())),
                    float(entry.get("dropout", 0.0)))
    info = model_info(model)
    num_classes = int(info.num_classes if info else getattr(model, "num_classes", 0))
    return HeadedModel(model, spec, num_classes)
