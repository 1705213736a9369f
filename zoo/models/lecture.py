"""The CIFAR nets of 'Deep Learning with PyTorch' (Stevens, Antiga, Viehmann), chapter 8."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Net(nn.Module):
    """Two tanh conv blocks with max-pooling, then 512 -> 32 -> classes (18,090 params at 2 classes)."""

    def __init__(self, num_classes: int = 2, in_chans: int = 3, n_chans1: int = 16, kernel_size: int = 3) -> None:
        super().__init__()
        self.n_chans1 = n_chans1
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(in_chans, n_chans1, kernel_size=kernel_size, padding=pad)
        self.conv2 = nn.Conv2d(n_chans1, n_chans1 // 2, kernel_size=kernel_size, padding=pad)
        self.fc1 = nn.Linear(8 * 8 * (n_chans1 // 2), 32)
        self.num_features = 32
        self.fc2 = nn.Linear(32, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out = F.max_pool2d(torch.tanh(self.conv1(x)), 2)
        return F.max_pool2d(torch.tanh(self.conv2(out)), 2)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        out = torch.tanh(self.fc1(x.flatten(1)))
        return out if pre_logits else self.fc2(out)

    def get_classifier(self) -> nn.Module:
        return self.fc2

    def reset_classifier(self, num_classes: int) -> None:
        self.fc2 = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def net(num_classes: int = 2, in_chans: int = 3, kernel_size: int = 3) -> Net:
    return Net(num_classes=num_classes, in_chans=in_chans, kernel_size=kernel_size)
