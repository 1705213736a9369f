"""What zoo's own models share: the classifier contract in one small base class."""

from __future__ import annotations

import torch
from torch import nn


def linear_head(num_features: int, num_classes: int, like: nn.Module | None = None) -> nn.Module:
    """``nn.Linear(num_features, num_classes)``, or ``nn.Identity`` for 0 classes (as timm does).

    With ``like``, the new layer lands on that module's device and dtype, so a
    head swapped on a model already moved to the GPU works without another ``.to()``.
    """
    if num_classes <= 0:
        return nn.Identity()
    layer = nn.Linear(num_features, num_classes)
    return _match(layer, like)


def _match(layer: nn.Module, like: nn.Module | None) -> nn.Module:
    ref = next(like.parameters(), None) if like is not None else None
    return layer.to(device=ref.device, dtype=ref.dtype) if ref is not None else layer


class Classifier(nn.Module):
    """Base for zoo's own classifiers (timm's contract).

    A subclass sets ``num_features``, ``num_classes`` and the attribute named
    by ``classifier_name``, and defines ``forward_features`` (the trunk) and
    ``forward_head(x, pre_logits)``; ``forward`` is always their composition,
    so transfer code can cache features and train heads on them.
    """

    classifier_name = "fc"
    num_features: int
    num_classes: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """The trunk: images to unpooled features."""
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:  # pragma: no cover
        """Features to logits; with ``pre_logits`` stop before the classifier, at (N, num_features)."""
        raise NotImplementedError

    @property
    def head_hidden_size(self) -> int:
        """Width of the pre-logits, under timm's name for it (timm's num_features can be narrower)."""
        return self.num_features

    def get_classifier(self) -> nn.Module:
        """The last layer, the one ``reset_classifier`` replaces."""
        return getattr(self, self.classifier_name)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh one for ``num_classes`` (0: identity)."""
        self.num_classes = num_classes
        setattr(self, self.classifier_name, self._new_classifier(num_classes))

    def _new_classifier(self, num_classes: int) -> nn.Module:
        return linear_head(self.num_features, num_classes, like=self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
