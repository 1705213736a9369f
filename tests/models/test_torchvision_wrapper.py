"""The torchvision wrapper keeps torchvision's names and outputs and adds the contract."""

from __future__ import annotations

import pytest
import torch

from zoo.models.torchvision_models import TorchvisionClassifier, torchvision_model

# One small model per kind of split: conv trunk + Sequential classifier, mean-pooled, 1x1-conv classifier.
SMALL = ["mobilenet_v3_small", "shufflenet_v2_x0_5", "squeezenet1_1", "mnasnet0_5", "regnet_x_400mf"]


@pytest.mark.parametrize("arch", SMALL)
def test_wrapper_matches_torchvision(arch):
    from torchvision import models

    torch.manual_seed(0)
    original = models.get_model(arch, weights=None, num_classes=7).eval()
    wrapped = TorchvisionClassifier(original, arch).eval()
    assert list(wrapped.state_dict()) == list(original.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(wrapped(x), original(x), atol=1e-5)
        pre = wrapped.forward_head(wrapped.forward_features(x), pre_logits=True)
    assert tuple(pre.shape) == (2, wrapped.num_features)
    assert wrapped.get_classifier() is wrapped.get_submodule(wrapped.classifier_path)


def test_wrapper_splits_a_torchvision_vit_at_the_class_token():
    from torchvision.models import VisionTransformer

    torch.manual_seed(0)
    original = VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16,
                                 mlp_dim=32, num_classes=5).eval()
    wrapped = TorchvisionClassifier(original, "vit").eval()
    assert list(wrapped.state_dict()) == list(original.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        tokens = wrapped.forward_features(x)
        assert tuple(tokens.shape) == (2, 17, 16)  # 16 patches + the class token
        assert torch.allclose(wrapped(x), original(x), atol=1e-5)
        assert tuple(wrapped.forward_head(tokens, pre_logits=True).shape) == (2, 16)
    assert wrapped.classifier_path == "heads.head"


def test_googlenet_is_built_without_auxiliary_heads(built):
    model = built("googlenet")
    assert getattr(model, "aux1", None) is None and getattr(model, "aux2", None) is None
    assert not model.transform_input


def test_unknown_torchvision_arch():
    with pytest.raises(ValueError, match="no model 'resnet9'"):
        torchvision_model("resnet9")
