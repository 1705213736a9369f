"""An export folder holds one consistent export: never new files beside stale ones, never one overwritten."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from zoo.cli import cli
from zoo.errors import ExportError, OutputExistsError
from zoo.export import export

STALE = ("model.onnx", "model.int8.onnx", "model.validation.json")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, untrained_checkpoint):
    return untrained_checkpoint(tmp_path_factory.mktemp("ckpt") / "run", seed=0)


def earlier_export(out):
    """What an earlier export (of another checkpoint) left: a float and an int8 model with their report."""
    out.mkdir()
    for name in STALE:
        (out / name).write_text("stale")
    (out / "other.onnx").write_text("not this export's")
    return out


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def refuse_quantizing(monkeypatch, error):
    from zoo.export import quantize

    def refused(path, config, kinds, **options):
        raise error

    monkeypatch.setattr(quantize, "quantize_model", refused)


def test_a_folder_holding_an_export_is_refused_in_one_line(ckpt, tmp_path):
    out = earlier_export(tmp_path / "d")
    res = CliRunner().invoke(cli, ["export", str(ckpt), "--out", str(out)])
    assert res.exit_code == 1 and res.output.count("\n") == 1 and "Traceback" not in res.output
    assert "already holds an export" in res.output and "--overwrite" in res.output and "model.int8.onnx" in res.output
    assert listing(out) == sorted([*STALE, "other.onnx"])
    # Another --name is another export: it goes beside the first.
    assert set(export(ckpt, ["safetensors"], out, name="second")) == {"safetensors"}
    assert (out / "second.safetensors").is_file() and (out / "model.int8.onnx").read_text() == "stale"


def test_a_refused_int8_leaves_no_stale_int8_beside_the_new_model(ckpt, tmp_path, monkeypatch):
    from zoo.export.quantize import QuantizationRefused

    refuse_quantizing(monkeypatch, QuantizationRefused("static int8 lost 9 points", {"int8": {"refused": True}}))
    out = earlier_export(tmp_path / "d")
    lines: list[str] = []
    with pytest.raises(ExportError, match="lost 9 points"):
        export(ckpt, ["onnx"], out, quantize=["int8"], overwrite=True, log=lines.append)
    assert listing(out) == ["model.onnx", "model.validation.json", "other.onnx"]
    assert json.loads((out / "model.validation.json").read_text())["quantized"]["int8"]["refused"] is True
    (aside,) = tmp_path.glob("d.old-*")
    assert listing(aside) == sorted(STALE) and not list(tmp_path.glob(".d.*"))  # no temporary folder left


def test_a_failing_export_changes_nothing(ckpt, tmp_path, monkeypatch):
    from zoo.export import safetensors_export

    def unreadable(path, state):
        raise ExportError("model.safetensors does not read back")

    monkeypatch.setattr(safetensors_export, "_check_roundtrip", unreadable)
    out = earlier_export(tmp_path / "d")
    with pytest.raises(ExportError, match="does not read back"):
        export(ckpt, ["safetensors"], out, overwrite=True)
    assert listing(out) == sorted([*STALE, "other.onnx"]) and (out / "model.onnx").read_text() == "stale"
    assert not list(tmp_path.glob("d.old-*")) and not list(tmp_path.glob(".d.*"))
    with pytest.raises(ExportError, match="does not read back"):  # into a new folder: none is made
        export(ckpt, ["safetensors"], tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_overwrite_replaces_the_export_whole(ckpt, tmp_path):
    out = earlier_export(tmp_path / "d")
    res = CliRunner().invoke(cli, ["export", str(ckpt), "--out", str(out), "--format", "onnx,safetensors",
                                   "--overwrite", "--quiet"])
    assert res.exit_code == 0, res.output
    assert listing(out) == ["model.onnx", "model.safetensors", "model.validation.json", "other.onnx"]
    assert "moved" in res.output and "aside" in res.output
    with pytest.raises(OutputExistsError):
        export(ckpt, ["onnx"], out)
