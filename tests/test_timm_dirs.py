"""Checkpoints timm understands: timm loads a zoo checkpoint of its model, zoo loads a folder timm saved."""

from __future__ import annotations

import json

import pytest
import timm
import torch

import zoo
from zoo import checkpoint
from zoo.errors import CheckpointError
from zoo.io import load_config
from zoo.testing import torch_threads


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def x():
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def zoo_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = zoo.create_model("timm/resnet10t", num_classes=3)
    config = checkpoint.make_config(model, class_names=["a", "b", "c"], input_size=(3, 32, 32), mean=(0.5,) * 3,
                                    std=(0.25,) * 3)
    return checkpoint.save_checkpoint(tmp_path_factory.mktemp("ckpt") / "best", model, config)


def test_timm_loads_a_zoo_checkpoint_with_the_same_logits(zoo_ckpt, x):
    on_disk = json.loads((zoo_ckpt / "config.json").read_text())
    assert on_disk["architecture"] == "resnet10t" and on_disk["zoo_architecture"] == "timm/resnet10t"
    assert on_disk["label_names"] == ["a", "b", "c"] and on_disk["num_classes"] == 3
    assert on_disk["pretrained_cfg"]["input_size"] == [3, 32, 32] and on_disk["pretrained_cfg"]["mean"] == [0.5] * 3
    assert load_config(zoo_ckpt)["architecture"] == "timm/resnet10t"  # zoo reads its own name back
    by_timm = timm.create_model(f"local-dir:{zoo_ckpt}", pretrained=True).eval()
    assert by_timm.pretrained_cfg["mean"] == (0.5, 0.5, 0.5) or list(by_timm.pretrained_cfg["mean"]) == [0.5] * 3
    with torch.no_grad():
        assert torch.equal(by_timm(x), zoo.load(zoo_ckpt)(x))


def test_checkpoints_written_before_stay_loadable_and_other_models_get_no_timm_keys(zoo_ckpt, tmp_path, x):
    old = tmp_path / "old"
    old.mkdir()
    (old / "model.safetensors").write_bytes((zoo_ckpt / "model.safetensors").read_bytes())
    config = json.loads((zoo_ckpt / "config.json").read_text())
    config["architecture"] = config.pop("zoo_architecture")  # the layout before timm's keys
    (old / "config.json").write_text(json.dumps(config))
    with torch.no_grad():
        assert torch.equal(zoo.load(old)(x), zoo.load(zoo_ckpt)(x))
    net = zoo.create_model("net", num_classes=2)
    assert "pretrained_cfg" not in checkpoint.make_config(net) and "timm_architecture" not in checkpoint.make_config(net)


def test_zoo_loads_and_finetunes_a_folder_timm_saved(tmp_path, x):
    from timm.models._hub import save_for_hf

    from zoo.transfer.finetune import FinetuneOptions, build_backbone

    saved = timm.create_model("resnet10t", num_classes=5, pretrained=False).eval()
    save_for_hf(saved, tmp_path / "hf", model_config={"label_names": list("abcde")})  # pytorch_model.bin + config
    model, config = checkpoint.load_timm_folder(tmp_path / "hf")
    assert config["architecture"] == "timm/resnet10t" and config["class_names"] == list("abcde")
    with torch.no_grad():
        assert torch.equal(model(x), saved(x))
    for source in (f"local-dir:{tmp_path / 'hf'}", str(tmp_path / "hf")):
        backbone, label, _, norm = build_backbone(source, 2, FinetuneOptions())
        assert label.startswith("timm folder") and norm["mean"] == list(saved.pretrained_cfg["mean"])
        assert torch.equal(backbone.state_dict()["conv1.0.weight"], saved.state_dict()["conv1.0.weight"])
    (tmp_path / "hf" / "pytorch_model.bin").unlink()
    with pytest.raises(CheckpointError, match="has no model.safetensors or pytorch_model.bin"):
        checkpoint.load_timm_folder(tmp_path / "hf")
    save_for_hf(saved, tmp_path / "hf", safe_serialization=True)  # a hub snapshot's model.safetensors
    with torch.no_grad():
        assert torch.equal(checkpoint.load_timm_folder(tmp_path / "hf")[0](x), saved(x))
