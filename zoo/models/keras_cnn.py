"""The lecture's Keras-style CNN for 64x64 colour images (cats vs dogs).

Conv 32 3x3 relu, max-pool 2, conv 32 3x3 relu, max-pool 2 ('valid'
convolutions, as Keras' ``Conv2D`` defaults to), flatten, dense 128 relu,
dense output. The Keras original ends in one sigmoid unit; here the binary
task has two logits for cross-entropy, so every zoo classifier trains the same way.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.models._base import Classifier, linear_head


class KerasCNN(Classifier):
    """Two valid 3x3 conv + max-pool blocks, then dense ``hidden`` and the classifier ``fc2``."""

    classifier_name = "fc2"

    def __init__(self, num_classes: int = 2, in_chans: int = 3, img_size: int = 64, width: int = 32, hidden: int = 128) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, width, kernel_size=3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, width, kernel_size=3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        side = ((img_size - 2) // 2 - 2) // 2  # 64 -> 62 -> 31 -> 29 -> 14
        self.fc1 = nn.Linear(width * side * side, hidden)
        self.num_features = hidden
        self.fc2 = linear_head(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        out = torch.relu(self.fc1(x.flatten(1)))
        return out if pre_logits else self.fc2(out)


def keras_cnn(num_classes: int = 2, in_chans: int = 3, hidden: int = 128) -> KerasCNN:
    """The lecture's Keras CNN at 64x64x3, binary by default."""
    return KerasCNN(num_classes=num_classes, in_chans=in_chans, img_size=64, hidden=hidden)
