"""The autoencoder API the transfer code relies on (zoo finetune --encoder)."""

from __future__ import annotations

import pytest
import torch

from zoo.errors import CheckpointError
from zoo.factory import create_model
from zoo.models.autoencoder import Autoencoder, EncoderClassifier


def test_encoder_classifier_shares_the_autoencoders_encoder():
    ae = create_model("ae_mlp_28")
    clf = EncoderClassifier.from_autoencoder(ae, num_classes=5, hidden=16)
    assert clf.encoder is ae.encoder and clf.num_features == 16
    x = torch.randn(3, 1, 28, 28)
    assert tuple(clf(x).shape) == (3, 5)
    assert tuple(clf.forward_features(x).shape) == (3, ae.bottleneck)


def test_load_encoder_state_copies_only_the_encoder():
    torch.manual_seed(0)
    ae = create_model("ae_conv_32")
    clf = create_model("ae_conv_32", num_classes=4)
    head_before = clf.head.weight.clone()
    clf.load_encoder_state(ae.state_dict())
    for (k, a), b in zip(ae.encoder.state_dict().items(), clf.encoder.state_dict().values()):
        assert torch.equal(a, b), k
    assert torch.equal(clf.head.weight, head_before)
    clf.load_encoder_state(ae.encoder.state_dict())  # the encoder's own keys work too


def test_load_encoder_state_refuses_another_architecture():
    clf = create_model("ae_conv_32", num_classes=4)
    with pytest.raises(CheckpointError, match="architecture"):
        clf.load_encoder_state(create_model("ae_conv_32", bottleneck=8).state_dict())


def test_autoencoder_learns_to_reconstruct():
    # A few steps on a fixed batch must cut the reconstruction error: the decoder is wired to the encoder.
    torch.manual_seed(0)
    ae: Autoencoder = create_model("ae_conv_28")
    x = torch.randn(8, 1, 28, 28)
    opt = torch.optim.Adam(ae.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = torch.nn.functional.mse_loss(ae(x), x)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.8 * first
