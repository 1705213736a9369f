"""Pretrained weights: offline caches, safe reading, key remapping, clear failures."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

import zoo
from zoo.errors import CheckpointError, WeightsNotFoundError
from zoo.registry import PretrainedWeights
from zoo.pretrained import load_pretrained, read_weight_file, remap_state_dict


def spec_with(*weights):
    """cifar8_resnet's spec with other weight entries (keeps the models tiny)."""
    return dataclasses.replace(zoo.get_spec("cifar8_resnet"), weights=tuple(weights))


def random_state(num_classes=8, seed=1):
    torch.manual_seed(seed)
    return zoo.create_model("cifar8_resnet", num_classes=num_classes).state_dict()


def same(model, state, skip=("fc.",)):
    own = model.state_dict()
    return all(torch.equal(own[k], v) for k, v in state.items() if not k.startswith(skip))


def test_torch_hub_cache_is_found_offline(caches, no_network):
    torch_home, _ = caches
    state = random_state()
    target = torch_home / "hub" / "checkpoints" / "cifar8_resnet-0123abcd.pth"
    target.parent.mkdir(parents=True)
    torch.save(state, target)
    spec = spec_with(PretrainedWeights(tag="tv", url="https://example.invalid/models/cifar8_resnet-0123abcd.pth"))
    model = zoo.create_model(spec, num_classes=3)
    resolved = load_pretrained(model, spec)
    assert resolved.source == "torch-hub-cache" and resolved.path == str(target)
    assert same(model, state)
    assert zoo.model_info(model).pretrained["dropped"] == ["fc.bias", "fc.weight"]  # 8-class head dropped for 3 classes


def test_hf_cache_is_found_offline(caches, no_network):
    from safetensors.torch import save_file

    _, hf_home = caches
    state = random_state(seed=2)
    repo = hf_home / "hub" / "models--timm--cifar8_resnet.test_in1k"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "model.safetensors"))
    spec = spec_with(PretrainedWeights(tag="test_in1k", hf_hub_id="timm/cifar8_resnet.test_in1k"))
    model = zoo.create_model(spec, num_classes=8, pretrained=False)
    resolved = load_pretrained(model, spec, tag="test_in1k")
    assert resolved.source == "hf-cache"
    assert same(model, state, skip=())


def test_create_model_pretrained_uses_the_caches(caches, no_network):
    torch_home, _ = caches
    state = random_state(seed=3)
    (torch_home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, torch_home / "hub" / "checkpoints" / "w.pth")
    spec = spec_with(PretrainedWeights(tag="x", filename="w.pth"))
    model = zoo.create_model(spec, num_classes=2, pretrained=True)
    assert same(model, state)


def test_offline_and_missing_names_the_ways_out(caches, no_network):
    spec = spec_with(PretrainedWeights(tag="tv", url="https://example.invalid/m-1.pth", hf_hub_id="timm/m.x"))
    with pytest.raises(WeightsNotFoundError) as err:
        zoo.create_model(spec, pretrained=True)
    text = str(err.value)
    assert "--weights" in text and "m-1.pth" in text and "models--timm--m.x" in text and "ZOO_OFFLINE" in text
    assert "\n" not in text


def test_weights_file_with_wrapper_prefix_is_remapped(tmp_path):
    from safetensors.torch import save_file

    state = random_state(seed=4)
    wrapped = {f"model.{k}": v.contiguous() for k, v in state.items()}
    path = tmp_path / "w.safetensors"
    save_file(wrapped, str(path))
    model = zoo.create_model("cifar8_resnet", weights=str(path))
    assert same(model, state, skip=())


def test_pth_in_a_training_container_and_dataparallel_prefix(tmp_path):
    state = random_state(seed=5)
    path = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    assert set(read_weight_file(path)) == set(state)


def test_renamed_layout_is_matched_by_order():
    state = random_state(seed=6)
    model = zoo.create_model("cifar8_resnet")
    renamed = {f"other_{i}": v for i, v in enumerate(state.values())}
    out = remap_state_dict(renamed, model.state_dict())
    assert set(out) == {k for k in state if not k.endswith("num_batches_tracked")}
    assert all(torch.equal(out[k], state[k]) for k in out)


def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"weight": Evil()}, path)
    with pytest.raises(CheckpointError, match="pickle that would run code"):
        read_weight_file(path)


def test_shape_mismatch_names_the_first_key(tmp_path):
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in random_state().items()}
    state["layer2.conv1.weight"] = torch.zeros(3, 3, 3, 3)
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match="first mismatching key 'layer2.conv1.weight'"):
        zoo.create_model("cifar8_resnet", weights=str(path))


def test_another_architecture_is_refused(tmp_path):
    from safetensors.torch import save_file

    other = {k: v.contiguous() for k, v in zoo.create_model("net").state_dict().items()}
    path = tmp_path / "net.safetensors"
    save_file(other, str(path))
    with pytest.raises(CheckpointError, match="first mismatching key"):
        zoo.create_model("cifar8_resnet", weights=str(path))


def test_shipped_backbone_loads_offline(no_network):
    model = zoo.create_model("cifar8_resnet", num_classes=2, pretrained=True)
    assert zoo.model_info(model).pretrained["source"] == "package"
    assert zoo.model_info(model).pretrained["missing"] == ["fc.weight", "fc.bias"]


def test_torchvision_resnet18_file_loads_into_the_timm_model(caches, no_network):
    """The registry's resnet18 finds torchvision's file in $TORCH_HOME by its URL name, offline."""
    import torchvision

    torch_home, _ = caches
    torch.manual_seed(7)
    state = torchvision.models.resnet18().state_dict()
    spec = zoo.get_spec("resnet18")
    name = next(w.filename for w in spec.weights if w.layout == "torchvision")
    (torch_home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, torch_home / "hub" / "checkpoints" / name)
    model = zoo.create_model("resnet18", num_classes=2, pretrained=True)
    assert zoo.model_info(model).pretrained["source"] == "torch-hub-cache"
    assert same(model, state)


def test_timm_resnet18_from_the_hf_cache(caches, no_network):
    import timm
    from safetensors.torch import save_file

    _, hf_home = caches
    torch.manual_seed(8)
    state = {k: v.contiguous() for k, v in timm.create_model("resnet18").state_dict().items()}
    snapshot = hf_home / "hub" / "models--timm--resnet18.a1_in1k" / "snapshots" / "0123"
    snapshot.mkdir(parents=True)
    save_file(state, str(snapshot / "model.safetensors"))
    model = zoo.create_model("resnet18", num_classes=5, pretrained="a1_in1k")
    assert zoo.model_info(model).pretrained["source"] == "hf-cache"
    assert same(model, state)
