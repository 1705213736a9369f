"""Static int8 for CNNs: calibrated on --data, measured on other images, refused past --max-accuracy-drop."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from zoo.cli import cli
from zoo.errors import ExportError
from zoo.export import export
from zoo.testing import make_image_folder

CLASSES = ["red", "green", "blue"]



@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("int8-images"), CLASSES, per_class=8, size=36)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, untrained_checkpoint):
    return untrained_checkpoint(tmp_path_factory.mktemp("int8-ckpt") / "run", seed=1)


def test_export_calibrates_int8_on_data_and_measures_it_on_other_images(ckpt, images, tmp_path):
    import onnx

    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["export", str(ckpt), "--out", str(out), "--quantize", "int8", "--data", str(images),
                                      "--calibration-images", "8", "--json"])
    assert result.exit_code == 0, result.output
    entry = json.loads((out / "model.validation.json").read_text())["quantized"]["int8"]
    assert entry["mode"] == "static" and entry["calibration_images"] == 8
    assert entry["images"] == 24 - 8  # measured only on images the calibration never saw
    assert {"accuracy", "float32_accuracy", "accuracy_drop_points", "top1_agreement"} <= set(entry)
    assert entry["accuracy_drop_points"] <= 1.0 and entry["max_accuracy_drop"] == 1.0
    graph = onnx.load(str(out / "model.int8.onnx")).graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops  # QDQ around every convolution
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 3 and any(len(t.dims) == 4 for t in int8_weights)
    from zoo import runtime

    float_model, int8_model = runtime.load(out / "model.onnx"), runtime.load(out / "model.int8.onnx")
    assert int8_model.labels == CLASSES
    batch = float_model.preprocessing.load_batch(sorted(images.rglob("*.png"))[:6])
    assert np.abs(float_model.run(batch) - int8_model.run(batch)).max() < 0.5


def test_an_int8_model_that_loses_too_much_is_not_written(ckpt, images, tmp_path, monkeypatch):
    """A quantiser that breaks the model (here: it negates the logits) must fail the export."""
    import onnx
    from onnx import helper

    from zoo.export import quantize

    def damaging(src, dst, batches):
        proto = onnx.load(str(src))
        out = proto.graph.output[0].name
        for node in proto.graph.node:
            node.output[:] = [f"{o}_pre" if o == out else o for o in node.output]
        proto.graph.node.append(helper.make_node("Neg", [f"{out}_pre"], [out]))
        onnx.save(proto, str(dst))

    monkeypatch.setattr(quantize, "_quantize_static", damaging)
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="points of accuracy.*--max-accuracy-drop"):
        export(ckpt, ["onnx"], out, data=images, quantize=["int8"], quantize_options={"max_accuracy_drop": 1.0})
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "model.validation.json"]  # no int8 file, no temp
    entry = json.loads((out / "model.validation.json").read_text())["quantized"]["int8"]
    assert entry["refused"] is True and entry["accuracy_drop_points"] > 1.0


def test_static_int8_needs_data_and_dynamic_stays_available(ckpt, images, tmp_path):
    result = CliRunner().invoke(cli, ["export", str(ckpt), "--out", str(tmp_path / "a"), "--quantize", "int8"])
    assert result.exit_code == 1 and "--data DIR" in result.output and "Traceback" not in result.output
    out = tmp_path / "b"
    result = CliRunner().invoke(cli, ["export", str(ckpt), "--out", str(out), "--quantize", "int8", "--int8-mode", "dynamic",
                                      "--data", str(images)])
    assert result.exit_code == 0, result.output
    entry = json.loads((out / "model.validation.json").read_text())["quantized"]["int8"]
    assert entry["mode"] == "dynamic" and entry["images"] == 24 and "calibration_images" not in entry
