"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998).

Convolutions with average pooling (kernel 2, stride 2): the maps shrink from
32x32 to 5x5 while the channels grow from 1 to 16, then dense layers
120 -> 84 -> classes. ``forward_features`` is the conv trunk (N, 16, 5, 5);
the pre-logits are the 84 outputs of ``fc2``; ``fc3`` is the classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.models._base import Classifier, linear_head

_ACTS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}


class LeNet5(Classifier):
    """LeNet-5 for 1x32x32 digits; ``img_size=28`` pads the first conv by 2 (the MNIST-sized variant)."""

    classifier_name = "fc3"

    def __init__(self, num_classes: int = 10, in_chans: int = 1, img_size: int = 32, act: str = "tanh") -> None:
        super().__init__()
        if act not in _ACTS:
            raise ValueError(f"act must be one of {sorted(_ACTS)}, got {act!r}")
        if img_size not in (28, 32):
            raise ValueError(f"LeNet-5 takes 28x28 or 32x32 images, got img_size={img_size}")
        self.num_classes = num_classes
        # Padding 28x28 inputs to 32x32 inside the first conv keeps the 5x5 maps the dense layers expect.
        pad = (32 - img_size) // 2
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 6, kernel_size=5, padding=pad),
            _ACTS[act](),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5),
            _ACTS[act](),
            nn.AvgPool2d(kernel_size=2, stride=2),
        )
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.act = _ACTS[act]()
        self.num_features = 84
        self.fc3 = linear_head(84, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        out = self.act(self.fc2(self.act(self.fc1(x.flatten(1)))))
        return out if pre_logits else self.fc3(out)


def lenet5(num_classes: int = 10, in_chans: int = 1, act: str = "tanh") -> LeNet5:
    """LeNet-5 at 1x32x32 (61,706 params at 10 classes)."""
    return LeNet5(num_classes=num_classes, in_chans=in_chans, img_size=32, act=act)


def lenet5_28(num_classes: int = 10, in_chans: int = 1, act: str = "tanh") -> LeNet5:
    """LeNet-5 for 1x28x28 MNIST-sized input (first conv padded by 2; same params)."""
    return LeNet5(num_classes=num_classes, in_chans=in_chans, img_size=28, act=act)
