"""Network in Network (Lin, Chen, Yan 2014), the ImageNet model of the paper.

Each NiN block is a spatial conv followed by two 1x1 convs, a per-pixel MLP.
There is no dense layer: the last block's final 1x1 conv turns the feature
map into one map per class and global average pooling
(``AdaptiveAvgPool2d((1, 1))``) turns the maps into logits.

The split for the classifier contract: ``forward_features`` runs every block
up to and including the last block's first two convs (N, 1024, 5, 5 at
224x224); the classifier is the last 1x1 conv (``classifier``). Because a
1x1 conv and average pooling are both linear they commute, so the pre-logits
are the pooled features (N, 1024) and ``forward_head`` gives the same logits
whether it pools first or last. Unlike the Caffe model there is no ReLU after
the class maps: the logits may be negative, as cross-entropy expects.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.models._base import Classifier


def nin_block(in_chans: int, out_chans: int, kernel_size: int, stride: int, padding: int) -> nn.Sequential:
    """conv k x k, ReLU, then two 1x1 convs with ReLU: an MLP applied at every pixel."""
    return nn.Sequential(
        nn.Conv2d(in_chans, out_chans, kernel_size, stride=stride, padding=padding),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_chans, out_chans, kernel_size=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_chans, out_chans, kernel_size=1),
        nn.ReLU(inplace=True),
    )


class NiN(Classifier):
    """NiN: three NiN blocks with max-pooling, dropout, a fourth block whose last 1x1 conv is the classifier."""

    classifier_name = "classifier"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, head_chans: int = 1024, drop_rate: float = 0.5) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nin_block(in_chans, 96, kernel_size=11, stride=4, padding=0),
            nn.MaxPool2d(3, stride=2),
            nin_block(96, 256, kernel_size=5, stride=1, padding=2),
            nn.MaxPool2d(3, stride=2),
            nin_block(256, 384, kernel_size=3, stride=1, padding=1),
            nn.MaxPool2d(3, stride=2),
            nn.Dropout(drop_rate),
            # The last block without its final 1x1 conv: that conv is the classifier below.
            nn.Conv2d(384, head_chans, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(head_chans, head_chans, kernel_size=1),
            nn.ReLU(inplace=True),
        )
        self.num_features = head_chans
        self.global_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = self._new_classifier(num_classes)

    def _new_classifier(self, num_classes: int) -> nn.Module:
        if num_classes <= 0:
            return nn.Identity()
        conv = nn.Conv2d(self.num_features, num_classes, kernel_size=1)
        ref = next(self.features.parameters())
        return conv.to(device=ref.device, dtype=ref.dtype)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits:
            return self.global_pool(x).flatten(1)
        return self.global_pool(self.classifier(x)).flatten(1)


def nin(num_classes: int = 1000, in_chans: int = 3, head_chans: int = 1024, drop_rate: float = 0.5) -> NiN:
    """NiN for 3x224x224 ImageNet-sized input, as in the paper's ImageNet model."""
    return NiN(num_classes=num_classes, in_chans=in_chans, head_chans=head_chans, drop_rate=drop_rate)
