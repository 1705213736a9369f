"""register_weights: pretrained weights attached to a model that is already registered."""

from __future__ import annotations

import hashlib
import json
import types

import pytest
from click.testing import CliRunner

import zoo
from zoo.errors import CheckpointError, WeightsNotFoundError
from zoo.registry import PretrainedWeights
from zoo.testing import check_plugin

SHIPPED = "zoo:assets/backbones/cifar8_resnet.safetensors"
CLASSES = ("airplane", "automobile", "bird", "deer", "frog", "horse", "ship", "truck")


def plugin(*attachments, models=()):
    """A plugin object whose register_weights attaches ``(model_name, weights)`` pairs."""

    @zoo.hookimpl
    def register_weights(register):
        for name, weights in attachments:
            register(name, weights)

    obj = types.SimpleNamespace(register_weights=register_weights)
    if models:
        @zoo.hookimpl
        def register_models(register):
            for spec in models:
                register(spec)

        obj.register_models = register_models
    return obj


def shipped(tag="again", **extra):
    fields = dict(package_file=SHIPPED, num_classes=8, class_names=CLASSES, mean=(0.5, 0.5, 0.5),
                  std=(0.25, 0.25, 0.25), license="MIT")
    return PretrainedWeights(tag=tag, **{**fields, **extra})


def sha256_of_shipped():
    from importlib import resources

    return hashlib.sha256(resources.files("zoo").joinpath("assets/backbones/cifar8_resnet.safetensors").read_bytes()).hexdigest()


def test_weights_attach_to_a_builtin_through_the_kit():
    report = check_plugin(plugin(("cifar8_resnet", shipped(sha256=sha256_of_shipped()))), name="extra-weights")
    assert report.weights == ["cifar8_resnet.again"]
    assert report.models == [] and report.ok


def test_the_kit_reports_class_names_that_do_not_fit():
    bad = shipped(class_names=("a", "b", "c"))
    report = check_plugin(plugin(("cifar8_resnet", bad)), name="bad-names", raise_on_problem=False)
    assert any("3 class names for 8 classes" in p for p in report.problems)


def test_unknown_model_fails_that_plugin_only():
    good_spec = zoo.ModelSpec(name="attach_test_net", builder="zoo.models.lenet:lenet", family="lenet")
    report = check_plugin(plugin(("cifar8_resnett", shipped()), models=(good_spec,)), name="typo",
                          build=False, raise_on_problem=False)
    (problem,) = report.problems
    assert "register_weights raised UnknownModelError" in problem and "cifar8_resnet" in problem
    assert report.models == ["attach_test_net"] and report.weights == []  # its models still registered


def test_a_tag_the_model_has_is_refused():
    report = check_plugin(plugin(("cifar8_resnet", shipped(tag="cifar8"))), name="clash", raise_on_problem=False)
    assert any("cifar8_resnet.cifar8" in p and "already registered" in p for p in report.problems)


@pytest.fixture
def attached(fresh_plugins):
    """The process-wide manager with extra weights attached to cifar8_resnet."""

    def attach(*pairs):
        manager = fresh_plugins.get_manager()
        info = manager.register_plugin(plugin(*pairs), name="attached")
        assert info.ok, info.errors
        return manager.models.get("cifar8_resnet")

    return attach


def test_sha256_mismatch_is_refused_with_both_hashes(attached):
    attached(("cifar8_resnet", shipped(sha256="0" * 64)))
    with pytest.raises(CheckpointError) as info:
        zoo.create_model("cifar8_resnet", pretrained="again")
    assert "0" * 64 in str(info.value) and sha256_of_shipped() in str(info.value)


def test_a_missing_distribution_names_the_pip_command(attached):
    gone = PretrainedWeights(tag="elsewhere", package_file="zoo_no_such_weights_pkg:w.pth",
                             distribution="zoo-no-such-weights", license="Apache-2.0")
    attached(("cifar8_resnet", gone))
    with pytest.raises(WeightsNotFoundError) as info:
        zoo.create_model("cifar8_resnet", pretrained="elsewhere")
    assert str(info.value).endswith("pip install zoo-no-such-weights") and "\n" not in str(info.value)
    # without a tag, the first set on disk is used
    assert zoo.model_info(zoo.create_model("cifar8_resnet", pretrained=True)).pretrained["tag"] == "cifar8"


def test_zoo_info_lists_found_and_missing_weights(attached):
    from zoo.cli import cli

    gone = PretrainedWeights(tag="elsewhere", package_file="zoo_no_such_weights_pkg:w.pth",
                             distribution="zoo-no-such-weights", license="Apache-2.0")
    attached(("cifar8_resnet", shipped()), ("cifar8_resnet", gone))
    result = CliRunner().invoke(cli, ["info", "cifar8_resnet"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.startswith("  ") and line.split()}
    assert "package:" in lines["cifar8"] and "cifar8_resnet.safetensors" in lines["cifar8"]
    assert "package:" in lines["again"] and "license MIT" in lines["again"] and "from attached" in lines["again"]
    assert "not found:" in lines["elsewhere"] and "pip install zoo-no-such-weights" in lines["elsewhere"]
    assert "license Apache-2.0" in lines["elsewhere"]
    as_json = json.loads(CliRunner().invoke(cli, ["info", "cifar8_resnet", "--json"]).output)
    assert [w["tag"] for w in as_json["weights"]] == ["cifar8", "again", "elsewhere"]
    assert as_json["weights"][2]["path"] is None
