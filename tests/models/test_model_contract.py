"""Every built-in architecture follows the classifier contract and has its published size."""

from __future__ import annotations

import pytest
import torch

from zoo.default_plugins.models import builtin_specs
from zoo.summary import count_parameters
from zoo.testing import check_model

SPECS = {s.name: s for s in builtin_specs()}
CLASSIFIERS = [n for n, s in SPECS.items() if "autoencoder" not in s.tags]
AUTOENCODERS = [n for n, s in SPECS.items() if "autoencoder" in s.tags]

# Published parameter counts: the book (ch. 8) and torchvision's weight tables.
PUBLISHED = {
    "net": 18_090,
    "net_width": 38_386,
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "googlenet": 6_624_904,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "vit_base_patch16_224": 86_567_656,
    "lenet5": 61_706,
}


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_builtin_classifier_follows_the_contract(name, built, contract_problems):
    spec = SPECS[name]
    model = built(name)
    assert count_parameters(model) == spec.params
    assert model.num_classes == spec.num_classes
    assert model.head_hidden_size == model.num_features  # timm's name for the pre-logits width
    # At the default input size: output (1, classes), forward == forward_head(forward_features),
    # pre-logits (1, num_features), reset_classifier changes the width and keeps forward_features.
    assert contract_problems(spec, model) == []
    assert isinstance(model.get_classifier(), torch.nn.Module)
    assert model.get_classifier() is model.get_submodule(spec.classifier)
    if spec.first_conv:
        assert isinstance(model.get_submodule(spec.first_conv), torch.nn.Conv2d)


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_autoencoder_specs_build_both_ways(name):
    from zoo.factory import create_model
    from zoo.models.autoencoder import Autoencoder, EncoderClassifier

    spec = SPECS[name]
    ae = create_model(name).eval()
    assert isinstance(ae, Autoencoder)
    assert count_parameters(ae) == spec.params
    x = torch.randn(2, *spec.input_size)
    with torch.no_grad():
        assert ae(x).shape == x.shape
        assert tuple(ae.encoder(x).shape) == (2, ae.bottleneck)
    # With classes, the same spec is a classifier on that encoder.
    assert check_model(spec, num_classes=3, batch=1) == []
    clf = create_model(name, num_classes=3)
    assert isinstance(clf, EncoderClassifier)
    assert clf.get_classifier() is clf.get_submodule(spec.classifier)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_spec_params_are_the_published_counts(name):
    assert SPECS[name].params == PUBLISHED[name]


def test_every_spec_has_the_metadata_the_docs_need():
    for spec in SPECS.values():
        spec.validate()
        assert spec.family and spec.paper and spec.params and spec.classifier, spec.name
        assert len(spec.mean) == len(spec.std) == spec.in_chans, spec.name
    assert SPECS["resnet34"].weights[0].filename == "resnet34-b627a593.pth"
    assert SPECS["resnet34"].weights[0].url == "https://download.pytorch.org/models/resnet34-b627a593.pth"
    assert any(w.hf_hub_id == "timm/resnet34.a1_in1k" for w in SPECS["resnet34"].weights)
