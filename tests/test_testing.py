"""The conformance kit finds what a plugin author gets wrong, and accepts timm's variety."""

import types

import pytest

import zoo
from zoo import ModelSpec
from zoo.testing import check_model, check_plugin, make_image_folder


def _plugin(**spec_fields):
    module = types.ModuleType("zoo_plugin_kit_probe")

    @zoo.hookimpl
    def register_models(register):
        register(ModelSpec(**{"name": "probe_net", "input_size": (3, 32, 32), "num_classes": 2, **spec_fields}))

    module.register_models = register_models
    return module


def test_a_conforming_plugin_passes():
    report = check_plugin(_plugin(builder="zoo.models.lecture:net", params=18_090), name="probe")
    assert report.ok and report.models == ["probe_net"]


def test_wrong_parameter_count_is_reported():
    with pytest.raises(AssertionError, match="spec says 1,000 parameters, the model has 18,090"):
        check_plugin(_plugin(builder="zoo.models.lecture:net", params=1000), name="probe")


def test_model_ignoring_num_classes_is_reported(tmp_path, monkeypatch):
    (tmp_path / "stubborn.py").write_text(
        "from zoo.models.lecture import net\n"
        "def build(num_classes=2, in_chans=3):\n"
        "    return net(num_classes=2, in_chans=in_chans)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    report = check_plugin(_plugin(builder="stubborn:build"), name="probe", raise_on_problem=False)
    assert any("output shape (2, 2), expected (2, 3)" in p for p in report.problems)


def test_a_builder_that_fails_is_reported():
    report = check_plugin(_plugin(builder="zoo.models.lecture:no_such_builder"), name="probe", raise_on_problem=False)
    assert any("does not build" in p for p in report.problems)


def test_plugin_clashing_with_a_builtin_is_reported():
    report = check_plugin(_plugin(name="net", builder="zoo.models.lecture:net"), name="probe", raise_on_problem=False)
    assert any("already registered by 'builtin'" in p for p in report.problems)


def test_timm_head_with_hidden_layer_conforms():
    # mobilenetv3's pre-logits are head_hidden_size wide, not num_features
    assert check_model(zoo.get_spec("timm/mobilenetv3_small_050"), batch=1) == []


def test_generated_folder_is_balanced_and_split(tmp_path):
    root = make_image_folder(tmp_path, classes=("a", "b", "c"), per_class=4, size=(12, 10), split=True, val_per_class=2)
    for part, count in (("train", 4), ("val", 2)):
        assert sorted(p.name for p in (root / part).iterdir()) == ["a", "b", "c"]
        assert all(len(list((root / part / c).iterdir())) == count for c in "abc")
    from PIL import Image

    with Image.open(root / "train" / "a" / "0000.png") as img:
        assert img.size == (12, 10) and img.mode == "RGB"
