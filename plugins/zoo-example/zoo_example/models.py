"""A small CNN that follows zoo's classifier contract."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 10, in_chans: int = 3, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        chans = in_chans
        for out in (width, width * 2, width * 4):
            layers += [nn.Conv2d(chans, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            chans = out
        self.features = nn.Sequential(*layers)
        self.num_features = chans
        self.fc = nn.Linear(chans, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def tinynet(num_classes: int = 10, in_chans: int = 3, width: int = 16) -> TinyNet:
    return TinyNet(num_classes=num_classes, in_chans=in_chans, width=width)
