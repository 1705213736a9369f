"""The CIFAR nets of 'Deep Learning with PyTorch' (Stevens, Antiga, Viehmann), chapter 8.

Reproduced as published: tanh and max-pooling, 3x32x32 input, 2 classes
(the book's birds-vs-airplanes task). Layer names follow the book's code
(``conv1``, ``conv1_dropout``, ``conv1_batchnorm``, ``resblocks``, ``fc1``,
``fc2``) so weights trained with the book's classes load unchanged.

The split for the classifier contract: ``forward_features`` is the conv part
(N, C, 8, 8) or (N, C, 4, 4); ``forward_head`` flattens and runs ``fc1`` and
its activation (the pre-logits, 32 wide), then ``fc2``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from zoo.models._base import Classifier, linear_head

HIDDEN = 32  # width of fc1 in every net of the chapter


class _BookNet(Classifier):
    """The head every net of the chapter shares: flatten, fc1 (32), activation, fc2."""

    classifier_name = "fc2"
    act = staticmethod(torch.tanh)

    def _init_head(self, in_features: int, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc1 = nn.Linear(in_features, HIDDEN)
        self.num_features = HIDDEN
        self.fc2 = linear_head(HIDDEN, num_classes)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        out = self.act(self.fc1(x.flatten(1)))
        return out if pre_logits else self.fc2(out)


class Net(_BookNet):
    """Two conv blocks (conv, [batchnorm], tanh, max-pool, [dropout]) then fc 32 and the classifier.

    ``n_chans1=16`` is the book's ``Net`` (18,090 params); 32 is ``NetWidth``.
    ``drop_rate`` > 0 adds the ``Dropout2d`` of ``NetDropout`` after each block;
    ``batchnorm`` adds the ``BatchNorm2d`` of ``NetBatchNorm`` before each tanh.
    """

    def __init__(
        self,
        num_classes: int = 2,
        in_chans: int = 3,
        n_chans1: int = 16,
        kernel_size: int = 3,
        drop_rate: float = 0.0,
        batchnorm: bool = False,
    ) -> None:
        super().__init__()
        self.n_chans1 = n_chans1
        pad = kernel_size // 2  # keeps 32x32 so fc1 sees 8x8 maps, for 3x3 and the 5x5 exercise alike
        self.conv1 = nn.Conv2d(in_chans, n_chans1, kernel_size=kernel_size, padding=pad)
        if batchnorm:
            self.conv1_batchnorm = nn.BatchNorm2d(n_chans1)
        if drop_rate > 0:
            self.conv1_dropout = nn.Dropout2d(p=drop_rate)
        self.conv2 = nn.Conv2d(n_chans1, n_chans1 // 2, kernel_size=kernel_size, padding=pad)
        if batchnorm:
            self.conv2_batchnorm = nn.BatchNorm2d(n_chans1 // 2)
        if drop_rate > 0:
            self.conv2_dropout = nn.Dropout2d(p=drop_rate)
        self._init_head(8 * 8 * (n_chans1 // 2), num_classes)

    def _block(self, x: torch.Tensor, i: int) -> torch.Tensor:
        out = getattr(self, f"conv{i}")(x)
        if hasattr(self, f"conv{i}_batchnorm"):
            out = getattr(self, f"conv{i}_batchnorm")(out)
        out = F.max_pool2d(torch.tanh(out), 2)
        if hasattr(self, f"conv{i}_dropout"):
            out = getattr(self, f"conv{i}_dropout")(out)
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._block(self._block(x, 1), 2)


class NetDepth(_BookNet):
    """The book's ``NetDepth``: a third conv layer, relu activations; ``residual`` makes it ``NetRes``.

    ``NetRes`` adds the output of the second block to the third conv's
    activation before pooling (the chapter's first skip connection).
    """

    act = staticmethod(torch.relu)

    def __init__(
        self,
        num_classes: int = 2,
        in_chans: int = 3,
        n_chans1: int = 32,
        kernel_size: int = 3,
        residual: bool = False,
    ) -> None:
        super().__init__()
        self.n_chans1 = n_chans1
        self.residual = residual
        pad = kernel_size // 2
        half = n_chans1 // 2
        self.conv1 = nn.Conv2d(in_chans, n_chans1, kernel_size=kernel_size, padding=pad)
        self.conv2 = nn.Conv2d(n_chans1, half, kernel_size=kernel_size, padding=pad)
        self.conv3 = nn.Conv2d(half, half, kernel_size=kernel_size, padding=pad)
        self._init_head(4 * 4 * half, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out = F.max_pool2d(torch.relu(self.conv1(x)), 2)
        out = F.max_pool2d(torch.relu(self.conv2(out)), 2)
        skip = out if self.residual else 0
        return F.max_pool2d(torch.relu(self.conv3(out)) + skip, 2)


class ResBlock(nn.Module):
    """conv (no bias), batchnorm, relu, plus the input; the book's initialisation."""

    def __init__(self, n_chans: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(n_chans, n_chans, kernel_size=kernel_size, padding=kernel_size // 2, bias=False)
        self.batch_norm = nn.BatchNorm2d(num_features=n_chans)
        nn.init.kaiming_normal_(self.conv.weight, nonlinearity="relu")
        # A small batch-norm scale keeps the 100-block sum from blowing up at the start.
        nn.init.constant_(self.batch_norm.weight, 0.5)
        nn.init.zeros_(self.batch_norm.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.batch_norm(self.conv(x))) + x


class NetResDeep(_BookNet):
    """The book's ``NetResDeep``: conv, then ``n_blocks`` residual blocks, then fc 32 and the classifier.

    The published code builds ``nn.Sequential(*(n_blocks * [ResBlock(n)]))``:
    one block instance repeated, so all blocks share their weights (and
    batch-norm statistics). ``shared_blocks=True`` reproduces that, since the
    book's figures measured it; ``shared_blocks=False`` builds independent blocks.
    """

    act = staticmethod(torch.relu)

    def __init__(
        self,
        num_classes: int = 2,
        in_chans: int = 3,
        n_chans1: int = 32,
        n_blocks: int = 100,
        kernel_size: int = 3,
        shared_blocks: bool = True,
    ) -> None:
        super().__init__()
        self.n_chans1 = n_chans1
        self.conv1 = nn.Conv2d(in_chans, n_chans1, kernel_size=kernel_size, padding=kernel_size // 2)
        if shared_blocks:
            blocks = n_blocks * [ResBlock(n_chans1, kernel_size)]
        else:
            blocks = [ResBlock(n_chans1, kernel_size) for _ in range(n_blocks)]
        self.resblocks = nn.Sequential(*blocks)
        self._init_head(8 * 8 * n_chans1, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out = F.max_pool2d(torch.relu(self.conv1(x)), 2)
        return F.max_pool2d(self.resblocks(out), 2)


def net(num_classes: int = 2, in_chans: int = 3, kernel_size: int = 3, n_chans1: int = 16) -> Net:
    """The chapter's ``Net``: conv 3->16, conv 16->8, fc 512->32->2 (18,090 params)."""
    return Net(num_classes=num_classes, in_chans=in_chans, n_chans1=n_chans1, kernel_size=kernel_size)


def net_width(num_classes: int = 2, in_chans: int = 3, kernel_size: int = 3, n_chans1: int = 32) -> Net:
    """``NetWidth``: the same net with ``n_chans1`` channels in the first conv."""
    return Net(num_classes=num_classes, in_chans=in_chans, n_chans1=n_chans1, kernel_size=kernel_size)


def net_dropout(
    num_classes: int = 2, in_chans: int = 3, kernel_size: int = 3, n_chans1: int = 32, drop_rate: float = 0.4
) -> Net:
    """``NetDropout``: ``Dropout2d(p=0.4)`` after each conv block."""
    return Net(num_classes=num_classes, in_chans=in_chans, n_chans1=n_chans1, kernel_size=kernel_size, drop_rate=drop_rate)


def net_batchnorm(num_classes: int = 2, in_chans: int = 3, kernel_size: int = 3, n_chans1: int = 32) -> Net:
    """``NetBatchNorm``: ``BatchNorm2d`` after each conv, before tanh."""
    return Net(num_classes=num_classes, in_chans=in_chans, n_chans1=n_chans1, kernel_size=kernel_size, batchnorm=True)


def net_depth(num_classes: int = 2, in_chans: int = 3, kernel_size: int = 3, n_chans1: int = 32) -> NetDepth:
    """``NetDepth``: three conv layers, relu."""
    return NetDepth(num_classes=num_classes, in_chans=in_chans, n_chans1=n_chans1, kernel_size=kernel_size)


def net_res(num_classes: int = 2, in_chans: int = 3, kernel_size: int = 3, n_chans1: int = 32) -> NetDepth:
    """``NetRes``: ``NetDepth`` with a skip connection around the third conv."""
    return NetDepth(num_classes=num_classes, in_chans=in_chans, n_chans1=n_chans1, kernel_size=kernel_size, residual=True)


def net_res_deep(
    num_classes: int = 2,
    in_chans: int = 3,
    kernel_size: int = 3,
    n_chans1: int = 32,
    n_blocks: int = 100,
    shared_blocks: bool = True,
) -> NetResDeep:
    """``NetResDeep`` as published: 100 residual blocks sharing one set of weights by default."""
    return NetResDeep(
        num_classes=num_classes,
        in_chans=in_chans,
        n_chans1=n_chans1,
        n_blocks=n_blocks,
        kernel_size=kernel_size,
        shared_blocks=shared_blocks,
    )
