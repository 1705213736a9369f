"""I2DL autoencoders, and the classifier that reuses their encoder.

An :class:`Autoencoder` has ``.encoder`` (image -> (N, bottleneck) code),
``.decoder`` (code -> image) and ``.bottleneck``; ``forward(x)`` returns a
reconstruction with ``x``'s shape. The decoder's output is linear: it
reconstructs the *normalised* input, so train it with MSE against ``x``.

:class:`EncoderClassifier` puts a head on an encoder and follows the
classifier contract (``forward_features`` = the encoder's code). Transfer
from an autoencoder checkpoint (``zoo finetune --encoder CKPT``) goes::

    model = create_model("ae_conv_32", num_classes=10, **ckpt_kwargs)  # an EncoderClassifier
    model.load_encoder_state(autoencoder_state_dict)                 # copies encoder.* only

or, with an autoencoder module in hand, ``EncoderClassifier.from_autoencoder(ae, 10)``.

Registry convention: the ``ae_*`` specs have ``num_classes=0`` and the tag
``autoencoder``; their builders return the :class:`Autoencoder` for
``num_classes=0`` and an :class:`EncoderClassifier` around a fresh encoder
of the same shape for ``num_classes > 0``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from zoo.errors import CheckpointError
from zoo.models._base import Classifier, linear_head
from zoo.text import detail_line


class Autoencoder(nn.Module):
    """``decoder(encoder(x))``; the encoder maps images to ``bottleneck``-wide codes."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, bottleneck: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.bottleneck = bottleneck
        self.num_features = bottleneck
        self.num_classes = 0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The (N, bottleneck) code of a batch of images."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images from (N, bottleneck) codes."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class EncoderClassifier(Classifier):
    """An encoder as backbone plus a classifier ``head`` (optionally one hidden layer before it).

    ``forward_features`` is the encoder's (N, bottleneck) code; the pre-logits
    are that code, or the hidden layer's activations when ``hidden > 0``.
    """

    classifier_name = "head"

    def __init__(
        self, encoder: nn.Module, bottleneck: int, num_classes: int, hidden: int = 0, drop_rate: float = 0.0
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.bottleneck = bottleneck
        self.num_classes = num_classes
        self.pre = nn.Sequential(nn.Linear(bottleneck, hidden), nn.ReLU(inplace=True)) if hidden > 0 else nn.Identity()
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.num_features = hidden if hidden > 0 else bottleneck
        self.head = linear_head(self.num_features, num_classes)

    @classmethod
    def from_autoencoder(
        cls, autoencoder: Autoencoder, num_classes: int, hidden: int = 0, drop_rate: float = 0.0
    ) -> "EncoderClassifier":
        """A classifier on ``autoencoder.encoder`` (the same module, not a copy)."""
        return cls(autoencoder.encoder, autoencoder.bottleneck, num_classes, hidden=hidden, drop_rate=drop_rate)

    def load_encoder_state(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Copy encoder weights from an Autoencoder's state dict (``encoder.*`` keys) or the encoder's own.

        Raises :class:`zoo.errors.CheckpointError` when the shapes or names do
        not fit this encoder (another ``ae_*`` architecture or bottleneck).
        """
        prefixed = {k[len("encoder."):]: v for k, v in state_dict.items() if k.startswith("encoder.")}
        weights = prefixed or dict(state_dict)
        try:
            self.encoder.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                f"the encoder weights do not fit this model ({detail_line(exc)}); build it with the autoencoder's"
                " architecture name and arguments"
            ) from None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        out = self.drop(self.pre(x))
        return out if pre_logits else self.head(out)


# -- encoders and decoders -----------------------------------------------------


def mlp_autoencoder(in_chans: int, img_size: int, bottleneck: int, hidden: Sequence[int] = (256, 64)) -> Autoencoder:
    """Flatten, Linear+ReLU through ``hidden``, Linear to the code; the decoder mirrors it."""
    shape = (in_chans, img_size, img_size)
    widths = [in_chans * img_size * img_size, *hidden]
    enc: list[nn.Module] = [nn.Flatten(1)]
    for a, b in zip(widths[:-1], widths[1:]):
        enc += [nn.Linear(a, b), nn.ReLU(inplace=True)]
    enc.append(nn.Linear(widths[-1], bottleneck))
    back = [bottleneck, *reversed(widths[1:])]
    dec: list[nn.Module] = []
    for a, b in zip(back[:-1], back[1:]):
        dec += [nn.Linear(a, b), nn.ReLU(inplace=True)]
    dec += [nn.Linear(back[-1], widths[0]), nn.Unflatten(1, shape)]
    return Autoencoder(nn.Sequential(*enc), nn.Sequential(*dec), bottleneck)


def conv_autoencoder(in_chans: int, img_size: int, bottleneck: int, widths: Sequence[int] = (16, 32)) -> Autoencoder:
    """Stride-2 3x3 convs (ReLU) through ``widths``, then Linear to the code; transposed convs back."""
    steps = len(widths)
    if img_size % (2**steps):
        raise ValueError(f"img_size {img_size} must be divisible by {2**steps} for {steps} stride-2 convs")
    side = img_size // 2**steps
    chans = [in_chans, *widths]
    enc: list[nn.Module] = []
    for a, b in zip(chans[:-1], chans[1:]):
        enc += [nn.Conv2d(a, b, kernel_size=3, stride=2, padding=1), nn.ReLU(inplace=True)]
    enc += [nn.Flatten(1), nn.Linear(chans[-1] * side * side, bottleneck)]
    dec: list[nn.Module] = [
        nn.Linear(bottleneck, chans[-1] * side * side),
        nn.ReLU(inplace=True),
        nn.Unflatten(1, (chans[-1], side, side)),
    ]
    back = list(reversed(chans))
    for i, (a, b) in enumerate(zip(back[:-1], back[1:])):
        dec.append(nn.ConvTranspose2d(a, b, kernel_size=3, stride=2, padding=1, output_padding=1))
        if i < steps - 1:  # no activation on the reconstruction itself
            dec.append(nn.ReLU(inplace=True))
    return Autoencoder(nn.Sequential(*enc), nn.Sequential(*dec), bottleneck)


def _build(autoencoder: Autoencoder, num_classes: int) -> Autoencoder | EncoderClassifier:
    # num_classes > 0 asks for the classifier on this architecture's encoder
    # (how checkpoints of fine-tuned encoders are rebuilt).
    if num_classes > 0:
        return EncoderClassifier.from_autoencoder(autoencoder, num_classes)
    return autoencoder


def ae_mlp_28(num_classes: int = 0, in_chans: int = 1, bottleneck: int = 20) -> Autoencoder | EncoderClassifier:
    """MLP autoencoder for 1x28x28 (MNIST-sized): 784 -> 256 -> 64 -> 20 and back."""
    return _build(mlp_autoencoder(in_chans, 28, bottleneck), num_classes)


def ae_mlp_32(num_classes: int = 0, in_chans: int = 3, bottleneck: int = 64) -> Autoencoder | EncoderClassifier:
    """MLP autoencoder for 3x32x32 (CIFAR-sized): 3072 -> 512 -> 256 -> 64 and back."""
    return _build(mlp_autoencoder(in_chans, 32, bottleneck, hidden=(512, 256)), num_classes)


def ae_conv_28(num_classes: int = 0, in_chans: int = 1, bottleneck: int = 20) -> Autoencoder | EncoderClassifier:
    """Conv autoencoder for 1x28x28: 28 -> 14 -> 7 maps (16, 32 channels), code of 20."""
    return _build(conv_autoencoder(in_chans, 28, bottleneck, widths=(16, 32)), num_classes)


def ae_conv_32(num_classes: int = 0, in_chans: int = 3, bottleneck: int = 64) -> Autoencoder | EncoderClassifier:
    """Conv autoencoder for 3x32x32: 32 -> 16 -> 8 -> 4 maps (32, 64, 128 channels), code of 64."""
    return _build(conv_autoencoder(in_chans, 32, bottleneck, widths=(32, 64, 128)), num_classes)
