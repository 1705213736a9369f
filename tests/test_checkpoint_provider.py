"""A checkpoint names the distribution of its architecture, and an unknown one says so (issue 18, 11-12)."""

import pytest

import zoo
from zoo.checkpoint import build_model, load_checkpoint, make_config, save_checkpoint
from zoo.errors import CheckpointError

GOOD = """
import zoo
from zoo import ModelSpec

@zoo.hookimpl
def register_models(register):
    register(ModelSpec(name="provided_net", builder="zoo.models.lecture:net", input_size=(3, 32, 32), num_classes=2))
"""


def test_an_unknown_architecture_is_not_called_a_missing_entry():
    with pytest.raises(CheckpointError) as err:
        build_model({"architecture": "resnet43", "num_classes": 2})
    assert "architecture 'resnet43' is not registered" in str(err.value)
    assert "lacks" not in str(err.value)


def test_a_missing_entry_still_says_lacks():
    with pytest.raises(CheckpointError, match="config lacks 'num_classes'"):
        build_model({"architecture": "net"})


def test_the_config_records_the_providing_distribution(fresh_plugins, fake_distribution, tmp_path, monkeypatch):
    fake_distribution("provider", GOOD, version="3.1")
    model = zoo.create_model("provided_net", num_classes=2)
    config = make_config(model)
    assert config["provided_by"] == {"plugin": "provider", "distribution": "zoo-provider", "version": "3.1"}
    assert make_config(zoo.create_model("net", num_classes=2))["provided_by"]["distribution"] == "zoo"
    save_checkpoint(tmp_path / "ckpt", model, config)

    fresh_plugins.reset()  # the plugin is uninstalled: no entry point offers it any more
    monkeypatch.setattr("zoo.plugins.manager._entry_points", lambda: [])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "ckpt")
    assert "install zoo-provider (it was 3.1)" in str(err.value)
    assert "'provider'" in str(err.value)


def test_a_disabled_plugin_is_named_as_disabled(fresh_plugins, fake_distribution, tmp_path):
    fake_distribution("provider", GOOD)
    model = zoo.create_model("provided_net", num_classes=2)
    save_checkpoint(tmp_path / "ckpt", model, make_config(model))
    fresh_plugins.reset()
    fresh_plugins.configure(no_plugins=True)
    with pytest.raises(CheckpointError, match="which is disabled"):
        load_checkpoint(tmp_path / "ckpt")


def test_the_efficientnet_lite_message_names_its_distribution(fresh_plugins, monkeypatch):
    monkeypatch.setattr("zoo.plugins.manager._entry_points", lambda: [])
    config = {"architecture": "efficientnet_lite0", "num_classes": 2,
              "provided_by": {"plugin": "efficientnet_lite", "distribution": "zoo-efficientnet-lite", "version": None}}
    with pytest.raises(CheckpointError, match="install zoo-efficientnet-lite"):
        build_model(config)
