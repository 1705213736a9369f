"""The I2DL fully connected classifier: flatten, Linear, ReLU, ..., Linear.

The exercise's two-layer net is the default (``num_layers=2``: one hidden
layer). ``num_layers`` up to 4, ``drop_rate`` and ``batchnorm`` exist for
hyperparameter searches over the same family. The pre-logits are the last
hidden layer's activations; ``fc`` is the classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.models._base import Classifier, linear_head


class MLP(Classifier):
    """``num_layers`` Linear layers on the flattened image; hidden layers Linear, [BatchNorm1d], ReLU, [Dropout]."""

    classifier_name = "fc"

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int = 32,
        hidden_size: int = 100,
        num_layers: int = 2,
        drop_rate: float = 0.0,
        batchnorm: bool = False,
    ) -> None:
        super().__init__()
        if not 2 <= num_layers <= 4:
            raise ValueError(f"num_layers must be 2, 3 or 4 (Linear layers incl. the classifier), got {num_layers}")
        self.num_classes = num_classes
        layers: list[nn.Module] = [nn.Flatten(1)]
        width = in_chans * img_size * img_size
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(width, hidden_size))
            if batchnorm:
                layers.append(nn.BatchNorm1d(hidden_size))
            layers.append(nn.ReLU(inplace=True))
            if drop_rate > 0:
                layers.append(nn.Dropout(drop_rate))
            width = hidden_size
        self.hidden = nn.Sequential(*layers)
        self.num_features = hidden_size
        self.fc = linear_head(hidden_size, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.fc(x)


def i2dl_mlp(
    num_classes: int = 10,
    in_chans: int = 3,
    hidden_size: int = 100,
    num_layers: int = 2,
    drop_rate: float = 0.0,
    batchnorm: bool = False,
) -> MLP:
    """The I2DL two-layer net for 3x32x32 CIFAR images (Linear, ReLU, Linear)."""
    return MLP(num_classes, in_chans, 32, hidden_size, num_layers, drop_rate, batchnorm)
