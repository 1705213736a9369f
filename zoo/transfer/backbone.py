"""The small CIFAR-sized residual network behind the embedded default.

``cifar8_resnet`` is a four-stage ResNet for 32x32 images (about 0.9M
parameters) that this project pretrains itself on the eight CIFAR-10 classes
other than cat and dog (``benchmarks/pretrain_backbone.py``) and ships as
safetensors, so ``zoo finetune cifar8_resnet --data demo:cats`` works offline.
Stages are named ``stem``, ``layer1`` .. ``layer3``, the classifier ``fc``,
so freezing "up to layer2" reads naturally.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from zoo.models._base import Classifier, linear_head


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1) shortcut."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chs)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.downsample = None
        if stride != 1 or in_chs != out_chs:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False), nn.BatchNorm2d(out_chs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + shortcut, inplace=True)


class CifarResNet(Classifier):
    """stem (32x32) -> layer1 (16x16) -> layer2 (8x8) -> layer3 (4x4) -> pool -> fc."""

    classifier_name = "fc"

    def __init__(
        self,
        num_classes: int = 8,
        in_chans: int = 3,
        widths: tuple[int, int, int, int] = (32, 64, 128, 192),
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        w0, w1, w2, w3 = widths
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, w0, 3, padding=1, bias=False), nn.BatchNorm2d(w0), nn.ReLU(inplace=True)
        )
        self.layer1 = BasicBlock(w0, w1, stride=2)
        self.layer2 = BasicBlock(w1, w2, stride=2)
        self.layer3 = BasicBlock(w2, w3, stride=2)
        self.num_features = w3
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.fc = linear_head(w3, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer3(self.layer2(self.layer1(self.stem(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(dim=(2, 3))
        if self.drop_rate:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.fc(x)


def cifar8_resnet(num_classes: int = 8, in_chans: int = 3, drop_rate: float = 0.0) -> CifarResNet:
    """The embedded default backbone (see module docstring)."""
    return CifarResNet(num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate)
