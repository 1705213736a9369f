"""The feature engine: ONNX Runtime gives PyTorch's features, falls back with one line, exports once."""

from __future__ import annotations

import re

import pytest
import torch
from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.errors import ZooError
from zoo.transfer import engine as eng
from zoo.transfer.features import extract_features


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    return zoo.create_model("cifar8_resnet", num_classes=3, pretrained=False).eval()


@pytest.fixture
def images():
    return torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def sample_of(images):
    return (images[:4].float() / 255 - 0.5) / 0.25


def features(model, images, engine=None):
    return extract_features(model, images, mean=[0.5] * 3, std=[0.25] * 3, batch_size=4, engine=engine)


def test_onnxruntime_features_equal_pytorch_features(backbone, images):
    lines = []
    engine = eng.choose_engine(backbone, sample_of(images), (3, 32, 32), log=lines.append)
    assert engine.name == "onnxruntime"
    with engine:
        fast = features(backbone, images, engine)
    slow = features(backbone, images)
    assert fast.shape == slow.shape == (10, backbone.num_features)
    assert torch.allclose(fast, slow, atol=eng.ATOL * max(1.0, float(slow.abs().max())), rtol=0)


def test_torch_engine_restores_the_model(backbone, images):
    engine = eng.choose_engine(backbone, sample_of(images), (3, 32, 32), engine="torch")
    backbone.train()
    with engine:
        out = features(backbone, images, engine)
    assert backbone.training and out.requires_grad is False
    assert all(p.is_contiguous() for p in backbone.parameters())  # safetensors saves it as before
    backbone.eval()
    torch.nn.Linear(out.shape[1], 2)(out).sum().backward()  # the cached features train a head


def test_second_run_does_not_export_again(backbone, images, monkeypatch):
    from zoo.export import onnx_export

    calls = []
    real = onnx_export.export_onnx
    monkeypatch.setattr(onnx_export, "export_onnx", lambda *a, **k: calls.append(1) or real(*a, **k))
    model = zoo.create_model("cifar8_resnet", num_classes=2, pretrained=False)
    lines: list[str] = []
    for _ in range(2):
        assert eng.choose_engine(model, sample_of(images), (3, 32, 32), log=lines.append).name == "onnxruntime"
    assert len(calls) == 1 and sum("exporting" in line for line in lines) == 1
    assert not list(eng.backbone_cache_dir().glob(".*"))  # no temporary files left behind


@pytest.mark.parametrize("how", ["export fails", "disagrees"])
def test_fallback_to_pytorch_names_the_reason(backbone, images, monkeypatch, how):
    if how == "export fails":
        def broken(*args, **kwargs):
            raise zoo.errors.ExportError("the exporter cannot trace this model")

        monkeypatch.setattr(eng, "export_backbone", broken)
        reason = "cannot trace"  # a regular expression
    else:
        monkeypatch.setattr(eng, "ATOL", -1.0)  # no difference can pass: the real-batch check, or the export's own
        reason = "(disagrees with|does not match) PyTorch"
    lines: list[str] = []
    engine = eng.choose_engine(backbone, sample_of(images), (3, 32, 32), log=lines.append)
    assert engine.name == "torch"
    assert [line for line in lines if "instead of ONNX Runtime" in line] == [lines[-1]]
    assert re.search(reason, lines[-1])
    with pytest.raises(ZooError, match="--feature-engine onnxruntime"):
        eng.choose_engine(backbone, sample_of(images), (3, 32, 32), engine="onnxruntime")


def test_finetune_falls_back_in_one_line_and_still_trains(tiny_folder, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise zoo.errors.ExportError("simulated export failure")

    monkeypatch.setattr(eng, "export_backbone", broken)
    result = CliRunner().invoke(cli, ["finetune", "cifar8_resnet", "--data", str(tiny_folder), "--out",
                                      str(tmp_path / "ft"), "--epochs", "2", "--no-plot"])
    assert result.exit_code == 0, result.output
    fallback = [line for line in result.output.splitlines() if "instead of ONNX Runtime" in line]
    assert len(fallback) == 1 and "simulated export failure" in fallback[0]
    assert "with torch" in result.output and "Traceback" not in result.output


def test_engines_give_the_same_finetuned_head(tiny_folder, tmp_path):
    runs = {}
    for name in ("onnxruntime", "torch"):
        result = CliRunner().invoke(cli, ["finetune", "cifar8_resnet", "--data", str(tiny_folder), "--out",
                                          str(tmp_path / name), "--epochs", "3", "--no-plot", "--json",
                                          "--feature-engine", name])
        assert result.exit_code == 0, result.output
        assert f"with {name}" in result.output
        runs[name] = zoo.evaluate(str(tmp_path / name / "last"), str(tiny_folder)).accuracy
    assert abs(runs["onnxruntime"] - runs["torch"]) <= 0.005


def test_feature_pass_streams_whatever_the_cache_budget(tiny_folder, tmp_path):
    # Cached features keep no decoded images, so --cache-mb changes nothing on this path.
    runs = {}
    for name, extra in (("cached", []), ("streamed", ["--cache-mb", "0.01"])):
        result = CliRunner().invoke(cli, ["finetune", "cifar8_resnet", "--data", str(tiny_folder), "--out",
                                          str(tmp_path / name), "--epochs", "3", "--no-plot", *extra])
        assert result.exit_code == 0, result.output
        runs[name] = result.output
    assert "streaming them from disk" not in runs["streamed"] + runs["cached"]
    assert "with onnxruntime" in runs["streamed"]
    for path in ("cached", "streamed"):
        runs[path] = zoo.evaluate(str(tmp_path / path / "last"), str(tiny_folder)).accuracy
    assert runs["cached"] == runs["streamed"]  # the same features, whether held in memory or read per batch


def test_a_damaged_cached_backbone_is_exported_again(images):
    model = zoo.create_model("cifar8_resnet", num_classes=2, pretrained=False)
    path = eng.backbone_cache_dir() / f"{eng.weights_key(model, (3, 32, 32))}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an onnx file")
    lines: list[str] = []
    # The damaged file is removed and exported again at once, not left to fail every later run.
    assert eng.choose_engine(model, sample_of(images), (3, 32, 32), log=lines.append).name == "onnxruntime"
    assert "cached backbone" in lines[0] and "exporting it again" in lines[0] and path.stat().st_size > 1000
    assert eng.choose_engine(model, sample_of(images), (3, 32, 32)).name == "onnxruntime"


def test_lanes_give_the_features_of_one_run_in_file_order(backbone, images, tmp_path):
    # Two lanes of a one-thread session, cached (a batch cut in parts) or streamed (each lane decodes its
    # part): the same features as one run, in file order, with an unreadable file skipped in the middle.
    from PIL import Image

    from zoo.data.dataset import ImageSplit
    from zoo.runtime.skips import SkipReport
    from zoo.transfer.features import extract_split_features

    for i, img in enumerate(images):
        (tmp_path / "a").mkdir(exist_ok=True)
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(tmp_path / "a" / f"{i:02d}.png")
    (tmp_path / "a" / "05.png").write_bytes(b"broken")
    engine = eng.choose_engine(backbone, sample_of(images), (3, 32, 32), threads=2)
    assert engine.name == "onnxruntime" and engine.lanes == 2
    one = eng.OnnxFeatures(engine.session, engine.input_name, lanes=1)
    with engine:
        assert torch.equal(features(backbone, images, engine), features(backbone, images, one))
        split = ImageSplit(sorted((tmp_path / "a").iterdir()), torch.zeros(10, dtype=torch.long))  # streamed
        skipped = SkipReport()
        got, labels = extract_split_features(backbone, split, (3, 32, 32), mean=[0.5] * 3, std=[0.25] * 3,
                                             batch_size=3, engine=engine, skipped=skipped)
    kept = [i for i in range(10) if i != 5]
    want = features(backbone, images[kept], one)
    assert len(labels) == 9 and skipped.total == 1  # the broken file is left out, and reported
    assert torch.allclose(got, want, atol=1e-5, rtol=0)
