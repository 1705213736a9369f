"""Behaviour of zoo's own architectures beyond the contract: the book's details, options, in_chans."""

from __future__ import annotations

import pytest
import torch

from zoo.factory import create_model
from zoo.summary import count_parameters


def test_net_res_deep_shares_one_block_as_published():
    model = create_model("net_res_deep")
    blocks = list(model.resblocks)
    assert len(blocks) == 100 and all(b is blocks[0] for b in blocks)
    bn = blocks[0].batch_norm
    assert torch.all(bn.weight == 0.5) and torch.all(bn.bias == 0)
    assert count_parameters(model) == 75_810


def test_net_res_deep_independent_blocks_on_request():
    model = create_model("net_res_deep", n_blocks=10, shared_blocks=False)
    blocks = list(model.resblocks)
    assert len({id(b) for b in blocks}) == 10
    # conv1 + 10 x (conv 32->32 no bias + BN) + fc1 + fc2
    assert count_parameters(model) == 896 + 10 * (9216 + 64) + 65_568 + 66


@pytest.mark.parametrize("name", ["net", "net_width", "net_dropout", "net_batchnorm", "net_depth", "net_res", "net_res_deep"])
def test_lecture_nets_take_5x5_kernels(name):
    kwargs = {"n_blocks": 2} if name == "net_res_deep" else {}
    model = create_model(name, kernel_size=5, **kwargs).eval()
    assert model.conv1.kernel_size == (5, 5)
    assert tuple(model(torch.randn(1, 3, 32, 32)).shape) == (1, 2)


def test_lecture_nets_keep_the_books_layer_names():
    assert [k for k, _ in create_model("net_dropout").named_children()] == [
        "conv1", "conv1_dropout", "conv2", "conv2_dropout", "fc1", "fc2"]
    assert "conv1_batchnorm.running_mean" in create_model("net_batchnorm").state_dict()
    assert create_model("net_width", n_chans1=8).conv1.out_channels == 8
    assert isinstance(create_model("net_dropout").conv1_dropout, torch.nn.Dropout2d)


@pytest.mark.parametrize(
    "name, in_chans, size",
    [("lenet5", 3, 32), ("lenet5_28", 1, 28), ("net", 1, 32), ("nin", 1, 96), ("keras_cnn", 1, 64),
     ("i2dl_mlp", 1, 32), ("ae_conv_32", 1, 32), ("resnet18", 1, 64), ("torchvision/squeezenet1_1", 1, 64)],
)
def test_in_chans_and_headless_models(name, in_chans, size):
    model = create_model(name, in_chans=in_chans, num_classes=4).eval()
    x = torch.randn(1, in_chans, size, size)
    with torch.no_grad():
        assert tuple(model(x).shape) == (1, 4)
        model.reset_classifier(0)  # no classifier: the model returns its pre-logits, as timm's do
        assert tuple(model(x).shape) == (1, model.num_features)
    assert create_model(name, num_classes=0, in_chans=in_chans).num_features == model.num_features


def test_i2dl_mlp_options():
    model = create_model("i2dl_mlp", hidden_size=64, num_layers=4, drop_rate=0.2, batchnorm=True)
    kinds = [type(m).__name__ for m in model.hidden]
    assert kinds.count("Linear") == 3 and kinds.count("BatchNorm1d") == 3 and kinds.count("Dropout") == 3
    assert model.num_features == 64
    with pytest.raises(ValueError, match="num_layers"):
        create_model("i2dl_mlp", num_layers=5)


def test_nin_has_no_dense_layer_and_pools_class_maps():
    model = create_model("nin", num_classes=10).eval()
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert isinstance(model.global_pool, torch.nn.AdaptiveAvgPool2d)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        pooled = model.forward_head(model.forward_features(x), pre_logits=True)
        # 1x1 conv and average pooling commute: the classifier applied to the pooled features gives the logits.
        via_pooled = model.get_classifier()(pooled[:, :, None, None]).flatten(1)
        assert torch.allclose(via_pooled, model(x), atol=1e-5)


def test_unknown_builder_argument_is_a_user_error():
    from zoo.errors import ZooError

    with pytest.raises(ZooError, match="zoo info lenet5"):
        create_model("lenet5", depth=3)


@pytest.mark.parametrize("name", ["net", "nin", "i2dl_mlp", "torchvision/squeezenet1_1", "torchvision/mnasnet0_5"])
def test_reset_classifier_follows_the_models_dtype(name):
    model = create_model(name, num_classes=2).double()
    model.reset_classifier(5)
    assert next(model.get_classifier().parameters()).dtype == torch.float64
