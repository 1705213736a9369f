"""Bad input across the commands that read folders: the one skip report, the one suffix list, clear messages."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image

import zoo
from zoo import checkpoint
from zoo.cli import cli
from zoo.testing import make_image_folder

CLASSES = ["cat", "dog"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _corrupt(path):
    Image.new("RGB", (16, 16), (200, 10, 10)).save(path, format="JPEG")
    path.write_bytes(path.read_bytes()[:40])  # header only
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-input")
    model = zoo.create_model("net")
    checkpoint.save_checkpoint(root / "ckpt", model, checkpoint.make_config(model, class_names=CLASSES))
    from zoo.export import export

    onnx_path = export(root / "ckpt", ["onnx"], root / "out", real_images=False)["onnx"]
    return {"ckpt": root / "ckpt", "onnx": onnx_path}


@pytest.fixture
def mixed(tmp_path):
    """20 images (one .jfif, one upper-case .JPG), one corrupt, one 0-byte, a note and an image-named folder."""
    root = make_image_folder(tmp_path / "imgs", CLASSES, per_class=9, size=24)
    Image.new("RGB", (30, 20), (10, 200, 10)).save(root / "cat" / "phone.jfif", format="JPEG")
    Image.new("RGB", (1, 1), (10, 10, 200)).save(root / "dog" / "TINY.JPG", format="JPEG")  # 1x1 is an image too
    _corrupt(root / "cat" / "broken.jpg")
    (root / "dog" / "empty.png").write_bytes(b"")
    (root / "dog" / "notes.txt").write_text("hello")
    (root / "dog" / "folder.png").mkdir()  # a directory named like an image is walked, not read
    (root / "dog" / "loop").symlink_to(root / "dog")  # a link loop ends
    return root


@pytest.mark.parametrize("kind", ["ckpt", "onnx"])
def test_predict_dir_predicts_the_readable_images_and_names_the_rest(models, mixed, kind):
    res = run("predict", models[kind], mixed, "--json")
    assert res.exit_code == 0, res.output
    answer = json.loads(res.stdout)
    sources = sorted(p["input"] if "input" in p else p["source"] for p in answer["predictions"])
    assert answer["skipped"]["count"] == 3 and answer["skipped"]["by_reason"]["corrupt"] == 1
    assert len(sources) == 20  # 18 generated + phone.jfif + TINY.JPG, nothing twice through the loop
    assert any(s.endswith("phone.jfif") for s in sources) and any(s.endswith("TINY.JPG") for s in sources)
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("zoo: skipped 3 files (1 corrupt, 1 empty file, 1 not an image)"), line
    assert "broken.jpg (corrupt)" in line and "empty.png (empty file)" in line


@pytest.mark.parametrize("kind", ["ckpt", "onnx"])
def test_predict_on_only_unreadable_images_fails_with_the_reasons(models, tmp_path, kind):
    _corrupt(tmp_path / "a.jpg")
    (tmp_path / "b.png").write_bytes(b"")
    res = run("predict", models[kind], tmp_path)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "none of the images could be read: skipped 2 files (1 corrupt, 1 empty file)" in res.output


@pytest.mark.parametrize("command", ["predict", "export"])
def test_a_checkpoint_path_that_does_not_exist_says_so(tmp_path, command, models):
    missing = tmp_path / "runs" / "net" / "best"
    args = [models["onnx"].parent] if command == "predict" else ["--out", tmp_path / "out"]
    res = run(command, missing, *args)
    assert res.exit_code == 1
    assert f"checkpoint '{missing}' does not exist" in res.output and "unknown model" not in res.output
    res = run(command, "model.safetensors", *args)
    assert "checkpoint 'model.safetensors' does not exist" in res.output
    res = run(command, "lenett", *args)  # a name stays a name
    assert "unknown model 'lenett'" in res.output


@pytest.mark.parametrize("cache", ["--cache", "--no-cache"])
def test_train_and_evaluate_report_skipped_files_by_name(mixed, tmp_path, cache):
    out = tmp_path / "run"
    res = run("train", "net", "--data", mixed, "--out", out, "--epochs", 2, "--batch-size", 8, "--quiet",
              "--no-plot", "--val-split", 0.2, "--workers", 0, cache, "--json")
    assert res.exit_code == 0, res.output
    skipped = json.loads(res.stdout)["skipped"]
    assert skipped["by_reason"] == {"corrupt": 1, "empty file": 1, "not an image": 1}  # once, not once per epoch
    assert {f["path"].rsplit("/", 1)[-1] for f in skipped["files"]} == {"broken.jpg", "empty.png", "notes.txt"}
    assert "zoo: skipped 3 files (1 corrupt, 1 empty file, 1 not an image): " in res.stderr
    res = run("evaluate", out / "best", "--data", mixed, "--split", "all")
    assert res.exit_code == 0, res.output
    assert "skipped 3 files (1 corrupt, 1 empty file, 1 not an image): " in res.stdout
    assert "broken.jpg (corrupt)" in res.stdout


def test_a_folder_of_only_corrupt_images_is_an_error_naming_them(tmp_path):
    for cls in CLASSES:
        (tmp_path / cls).mkdir()
        _corrupt(tmp_path / cls / "x.jpg")
    res = run("train", "net", "--data", tmp_path, "--out", tmp_path / "run", "--epochs", 1, "--quiet", "--no-plot")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "none of the 2 training images" in res.output and "x.jpg (corrupt)" in res.output
