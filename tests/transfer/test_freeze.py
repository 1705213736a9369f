"""Freezing: stages, patterns, locked BatchNorm, parameter groups, and bit-identical frozen weights."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.errors import ZooError
from zoo.transfer.freeze import freeze, model_stages, param_groups, unfreeze
from zoo.transfer.heads import replace_head


@pytest.fixture
def resnet():
    torch.manual_seed(0)
    return zoo.create_model("cifar8_resnet", num_classes=3)


def test_stages_in_forward_order(resnet):
    assert [s.name for s in model_stages(resnet)] == ["stem", "layer1", "layer2", "layer3"]


def test_leading_layers_merge_into_a_stem():
    import timm

    stages = model_stages(timm.create_model("resnet18", num_classes=2))
    assert [s.name for s in stages] == ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert stages[0].aliases == ["conv1", "bn1"]


def test_freeze_up_to_a_stage(resnet):
    result = freeze(resnet, "layer1")
    assert result.frozen_stages == ["stem", "layer1"]
    assert not any(p.requires_grad for n, p in resnet.named_parameters() if n.startswith(("stem.", "layer1.")))
    assert all(p.requires_grad for n, p in resnet.named_parameters() if n.startswith(("layer2.", "fc.")))


def test_freeze_by_depth_and_pattern(resnet):
    freeze(resnet, 1, patterns=["layer3.bn*"])
    frozen = {n for n, p in resnet.named_parameters() if not p.requires_grad}
    assert {n for n in frozen if n.startswith("stem.")} and "layer3.bn1.weight" in frozen
    assert "layer3.conv1.weight" not in frozen and "layer1.conv1.weight" not in frozen


def test_unknown_stage_lists_the_valid_ones(resnet):
    with pytest.raises(ZooError, match="valid stages .*: stem, layer1, layer2, layer3"):
        freeze(resnet, "layer9")


def test_pattern_that_matches_nothing(resnet):
    with pytest.raises(ZooError, match="matches no parameter"):
        freeze(resnet, "none", patterns=["nothing.*"])


def test_frozen_batchnorm_survives_train(resnet):
    freeze(resnet, "layer1")
    resnet.train()
    assert not resnet.stem[1].training and not resnet.layer1.bn1.training
    assert resnet.layer2.bn1.training
    unfreeze(resnet, ["layer1"])
    resnet.train()
    assert resnet.layer1.bn1.training and type(resnet.layer1.bn1) is torch.nn.BatchNorm2d
    assert not resnet.stem[1].training


def test_bn_policy_train_leaves_batchnorm_alone(resnet):
    freeze(resnet, "backbone", bn_policy="train")
    resnet.train()
    assert resnet.layer1.bn1.training


def test_discriminative_learning_rates(resnet):
    model = replace_head(resnet, 3, "mlp:16")
    freeze(model, "layer2")
    groups = {g.name: g for g in param_groups(model, 0.1, 0.5)}
    assert list(groups) == ["stem", "layer1", "layer2", "layer3", "head"]
    assert groups["head"].lr == 0.1 and groups["layer3"].lr == 0.05 and groups["stem"].lr == pytest.approx(0.00625)
    assert groups["layer2"].trainable == 0 and groups["layer2"].frozen > 0 and groups["layer3"].frozen == 0


def test_frozen_parameters_and_buffers_are_bit_identical_after_training(tiny_folder, tmp_path):
    """Several epochs through the full model (no feature cache): frozen parts do not move at all."""
    from zoo.transfer.finetune import FinetuneOptions, finetune

    torch.manual_seed(0)
    base = zoo.create_model("cifar8_resnet", num_classes=8)
    from zoo.checkpoint import make_config, save_checkpoint

    save_checkpoint(tmp_path / "base", base, make_config(base))
    before = {k: v.clone() for k, v in base.state_dict().items()}
    result = finetune(
        str(tmp_path / "base"), tiny_folder, options=FinetuneOptions(freeze="layer2"),
        epochs=3, batch_size=32, lr=0.01, augment="flip", out=str(tmp_path / "run"), progress=False, plot=False,
    )
    assert result.cached_features is False
    after = result.model.state_dict()
    frozen = [k for k in before if k.startswith(("stem.", "layer1.", "layer2."))]
    assert any(k.endswith("running_mean") for k in frozen)
    for key in frozen:
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["layer3.conv1.weight"], after["layer3.conv1.weight"])
    assert not torch.equal(before["layer3.bn1.running_mean"], after["layer3.bn1.running_mean"])


def test_one_metadata_record_survives_head_swaps_and_checkpoints(tmp_path):
    import zoo
    from zoo.checkpoint import load_checkpoint, make_config, save_checkpoint
    from zoo.transfer.heads import replace_head

    model = zoo.create_model("cifar8_resnet", pretrained=True)
    info = zoo.model_info(model)
    assert isinstance(info, zoo.ModelInfo) and (info.name, info.num_classes) == ("cifar8_resnet", 8)
    assert info.pretrained["tag"] == "cifar8"
    linear = replace_head(model, 3)
    assert zoo.model_info(linear).num_classes == 3 and zoo.model_info(linear).pretrained["tag"] == "cifar8"
    wrapped = replace_head(zoo.create_model("cifar8_resnet", pretrained=True), 2, "mlp:16")
    kept = zoo.model_info(wrapped)
    assert kept.num_classes == 2 and kept.adapters[-1]["type"] == "head" and kept.pretrained["tag"] == "cifar8"
    assert not any(hasattr(wrapped, a) for a in ("zoo_arch", "zoo_adapters", "zoo_pretrained", "zoo_config"))
    save_checkpoint(tmp_path / "ck", wrapped, make_config(wrapped, class_names=["a", "b"]))
    loaded, config = load_checkpoint(tmp_path / "ck")
    again = zoo.model_info(loaded)
    assert again.adapters == kept.adapters and again.num_classes == 2 and again.config == config
