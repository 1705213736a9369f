"""``zoo predict`` on checkpoints and on .onnx files."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import zoo
from zoo import checkpoint
from zoo.cli import cli
from zoo.testing import make_image_folder

CLASSES = ["cat", "dog"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    images = make_image_folder(root / "images", CLASSES, per_class=3, size=48)
    model = zoo.create_model("net")
    checkpoint.save_checkpoint(root / "ckpt", model, checkpoint.make_config(model, class_names=CLASSES))
    from zoo.export import export

    onnx_path = export(root / "ckpt", ["onnx"], root / "out", real_images=False)["onnx"]
    return {"ckpt": root / "ckpt", "onnx": onnx_path, "images": images}


def _predict(*args):
    result = CliRunner().invoke(cli, ["predict", *map(str, args)])
    return result


def test_checkpoint_and_onnx_agree(files):
    by_ckpt = _predict(files["ckpt"], files["images"], "--json")
    by_onnx = _predict(files["onnx"], files["images"], "--json")
    assert by_ckpt.exit_code == 0, by_ckpt.output
    assert by_onnx.exit_code == 0, by_onnx.output
    a, b = json.loads(by_ckpt.output)["predictions"], json.loads(by_onnx.output)["predictions"]
    assert len(a) == len(b) == 6
    for x, y in zip(a, b):
        assert x["input"] == y["input"]
        assert [t["label"] for t in x["top"]] == [t["label"] for t in y["top"]]
        for s, t in zip(x["top"], y["top"]):
            assert s["probability"] == pytest.approx(t["probability"], abs=1e-5)


def test_text_output_and_top_k(files):
    image = sorted(files["images"].rglob("*.png"))[0]
    result = _predict(files["onnx"], image, "--top-k", "1")
    assert result.exit_code == 0
    line = result.output.strip()
    assert line.startswith(f"{image}: ") and line.split(": ")[1].split()[0] in CLASSES
    assert len(line.split(",")) == 1


def test_bad_input_messages(files, tmp_path):
    missing = _predict(files["onnx"], tmp_path / "nope.png")
    assert missing.exit_code == 1 and "does not exist" in missing.output
    with_options = _predict(files["ckpt"], files["images"], "--mean", "0.5")
    assert with_options.exit_code != 0 and "apply to .onnx files" in with_options.output
    wrong_labels = _predict(files["onnx"], files["images"], "--labels", "a,b,c")
    assert wrong_labels.exit_code == 1 and "3 labels were given but the model has 2 outputs" in wrong_labels.output
    assert "Traceback" not in missing.output + wrong_labels.output


def test_foreign_onnx_needs_and_accepts_preprocessing_options(files, tmp_path):
    import onnx

    proto = onnx.load(str(files["onnx"]))
    del proto.metadata_props[:]
    foreign = tmp_path / "foreign.onnx"
    onnx.save(proto, str(foreign))
    bare = _predict(foreign, files["images"])
    assert bare.exit_code == 1 and "give --mean and --std" in bare.output
    config = checkpoint.load_config(files["ckpt"])
    ok = _predict(foreign, files["images"], "--mean", ",".join(map(str, config["mean"])),
                  "--std", ",".join(map(str, config["std"])), "--labels", "cat,dog", "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["predictions"][0]["top"][0]["label"] in CLASSES


def test_json_has_a_skipped_key(files):
    answer = json.loads(_predict(files["onnx"], files["images"], "--json").output)
    assert answer["skipped"] == {"count": 0, "by_reason": {}, "files": []}
    assert len(answer["predictions"]) == 6


def test_onnx_with_device_cuda_is_refused_without_cuda(files, monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])  # no CUDA here
    res = _predict(files["onnx"], files["images"], "--device", "cuda")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "no CUDAExecutionProvider" in res.output


def test_onnx_device_and_provider_must_agree(files):
    res = _predict(files["onnx"], files["images"], "--device", "cpu", "--provider", "cuda")
    assert res.exit_code == 2 and "disagree" in res.output
    assert _predict(files["onnx"], files["images"], "--device", "cpu").exit_code == 0
