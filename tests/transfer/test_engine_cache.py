"""The cached backbone of the feature engine: keyed on what it computes, and never trusted after a failed check."""

from __future__ import annotations

import shutil

import pytest
import torch

import zoo
from zoo.transfer import engine as eng


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(eng.CACHE_ENV, str(tmp_path / "cache"))


def lenet(act="tanh", num_classes=10, seed=0):
    torch.manual_seed(seed)
    return zoo.create_model("lenet5", num_classes=num_classes, act=act).eval()


def sample(seed=1):
    return torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_arguments_without_parameters_and_export_settings_change_the_key(monkeypatch):
    tanh = lenet("tanh")
    relu = lenet("relu")
    relu.load_state_dict(tanh.state_dict())  # the same weights, another function
    key = eng.weights_key(tanh, (1, 32, 32))
    assert eng.weights_key(relu, (1, 32, 32)) != key
    assert eng.weights_key(lenet("tanh", num_classes=3), (1, 32, 32)) == key  # the head is not the backbone
    monkeypatch.setitem(eng.EXPORT_SETTINGS, "spatial", "dynamic")
    assert eng.weights_key(tanh, (1, 32, 32)) != key
    monkeypatch.undo()
    from zoo.export import onnx_export

    monkeypatch.setattr(onnx_export, "DEFAULT_OPSET", onnx_export.DEFAULT_OPSET + 1)
    assert eng.weights_key(tanh, (1, 32, 32)) != key


def test_a_cached_backbone_that_disagrees_is_exported_again():
    """A stale file under the key (another function's graph) is replaced, not a reason to use PyTorch forever."""
    other, model = lenet("relu"), lenet("tanh")
    other.load_state_dict(model.state_dict())
    lines: list[str] = []
    stale = eng.export_backbone(other, (1, 32, 32), eng.backbone_cache_dir(), "stale")
    key = eng.weights_key(model, (1, 32, 32))
    shutil.move(stale, eng.backbone_cache_dir() / f"{key}.onnx")
    engine = eng.choose_engine(model, sample(), (1, 32, 32), log=lines.append)
    assert engine.name == "onnxruntime"
    assert any("cached backbone" in line and "exporting it again" in line for line in lines), lines
    lines.clear()
    assert eng.choose_engine(model, sample(), (1, 32, 32), log=lines.append).name == "onnxruntime"
    assert not lines  # the fresh file agrees: used as it is


def test_a_failed_check_removes_the_file_so_the_next_run_exports_afresh(monkeypatch):
    from zoo.export import validate as val

    model = lenet("tanh")
    real_compare = val.compare

    def disagree(session, reference, inputs, atol, **kwargs):
        checks = real_compare(session, reference, inputs, atol, **kwargs)
        if any(name.startswith("images, batch") for name in inputs):  # the engine's check, not the export's
            for check in checks:
                check.passed = False
        return checks

    monkeypatch.setattr(val, "compare", disagree)
    lines: list[str] = []
    assert eng.choose_engine(model, sample(), (1, 32, 32), log=lines.append).name == "torch"
    assert "disagrees with PyTorch" in lines[-1] and not list(eng.backbone_cache_dir().glob("*.onnx"))
    monkeypatch.setattr(val, "compare", real_compare)
    lines.clear()
    assert eng.choose_engine(model, sample(), (1, 32, 32), log=lines.append).name == "onnxruntime"
    assert any("exporting the backbone" in line for line in lines)
