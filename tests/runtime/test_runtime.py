"""zoo.runtime: predictions from exported files, preprocessing, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from zoo import runtime


@pytest.fixture(scope="module")
def model(exported):
    return runtime.load(exported["onnx"], provider="cpu")


def test_metadata_drives_preprocessing_and_labels(model):
    assert model.labels == ["red", "green", "blue"]
    assert model.preprocessing.input_size == (3, 32, 32)
    assert model.task == "classification"
    assert model.describe()["architecture"] == "net"
    assert model.providers == ["CPUExecutionProvider"]


def test_predicts_files_folders_and_arrays_alike(model, exported):
    images = exported["images"]
    files = sorted(images.rglob("*.png"))
    by_folder = model.predict([images], top_k=2, batch_size=4)  # 9 images: batches of 4, 4, 1
    assert [p.source for p in by_folder] == [str(f) for f in files]
    single = model.predict_image(files[0], top_k=2)
    assert single.labels == by_folder[0].labels
    assert single.probabilities == pytest.approx(by_folder[0].probabilities, abs=1e-6)
    batch = model.preprocessing.load_batch(files)
    from_array = model.predict_array(batch, top_k=3)
    for a, b in zip(from_array, by_folder):
        assert a.labels[:2] == b.labels and sum(a.probabilities) == pytest.approx(1.0)
    pil = model.predict_image(Image.open(files[0]), top_k=2)
    assert pil.probabilities == pytest.approx(single.probabilities, abs=1e-6)


def test_matches_the_pytorch_model(model, exported):
    import torch

    import zoo

    torch_model = zoo.load(exported["ckpt"])
    batch = model.preprocessing.load_batch(sorted(exported["images"].rglob("*.png")))
    with torch.inference_mode():
        expected = torch_model(torch.from_numpy(batch)).numpy()
    assert np.abs(model.run(batch) - expected).max() < 1e-4


def test_preprocessing_equals_the_training_eval_path(tmp_path):
    """numpy path == zoo.data's torch path, for every image mode a user may bring."""
    from zoo.data.decode import preprocess_image

    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8), "RGB")
    samples = {
        "rgb.png": rgb,
        "rgba.png": rgb.convert("RGBA"),
        "gray.png": rgb.convert("L"),
        "palette.png": rgb.convert("P"),
        "cmyk.jpg": rgb.convert("CMYK"),
    }
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    for name, image in samples.items():
        image.save(tmp_path / name)
        for chans, m, s in ((3, mean, std), (1, mean[:1], std[:1])):
            pre = runtime.Preprocessing(chans, 24, 40, m, s)
            ours = pre.load(tmp_path / name)
            theirs = preprocess_image(tmp_path / name, (chans, 24, 40), m, s).numpy()
            assert ours.shape == (chans, 24, 40) and ours.dtype == np.float32
            np.testing.assert_allclose(ours, theirs, atol=1e-6, err_msg=name)


def test_wrong_mode_and_size_images_are_converted(model, tmp_path):
    Image.new("L", (300, 17), 128).save(tmp_path / "gray.png")
    Image.new("RGBA", (5, 5), (255, 0, 0, 0)).save(tmp_path / "rgba.png")
    preds = model.predict([tmp_path], top_k=1)
    assert len(preds) == 2


def test_arrays_with_the_wrong_layout_are_explained(model):
    with pytest.raises(runtime.RuntimeInputError, match="channels last"):
        model.run(np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(runtime.RuntimeInputError, match="model takes 32x32"):
        model.run(np.zeros((1, 3, 64, 64), np.float32))
    with pytest.raises(runtime.RuntimeInputError, match=r"\(N, C, H, W\)"):
        model.run(np.zeros((32, 32), np.float32))


def test_bad_files_get_clear_messages(exported, tmp_path, model):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(exported["onnx"].read_bytes()[:2000])
    with pytest.raises(runtime.RuntimeInputError, match="corrupt, truncated or not ONNX"):
        runtime.load(broken)
    with pytest.raises(runtime.RuntimeInputError, match="does not exist"):
        runtime.load(tmp_path / "missing.onnx")
    png = tmp_path / "cut.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(png)
    png.write_bytes(png.read_bytes()[:60])
    with pytest.raises(runtime.RuntimeInputError, match="cut.png"):
        model.predict([png])
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(runtime.RuntimeInputError, match="not an image"):
        model.predict([tmp_path / "notes.png"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(runtime.RuntimeInputError, match="no images"):
        model.predict([tmp_path / "empty"])
    with pytest.raises(runtime.RuntimeInputError, match="no CUDAExecutionProvider"):
        runtime.load(exported["onnx"], provider="cuda")


@pytest.fixture(scope="module")
def foreign(exported, tmp_path_factory):
    """The same graph with every metadata entry stripped, as a file from elsewhere would come."""
    import onnx

    proto = onnx.load(str(exported["onnx"]))
    del proto.metadata_props[:]
    path = tmp_path_factory.mktemp("foreign") / "other.onnx"
    onnx.save(proto, str(path))
    return path


def test_a_file_without_metadata_says_which_options_to_give(foreign):
    with pytest.raises(runtime.RuntimeInputError) as info:
        runtime.load(foreign)
    message = str(info.value)
    assert "--mean" in message and "--std" in message and "--labels" in message
    assert "--size" not in message.split("give")[1].split("(")[0]  # the graph itself fixes 32x32


def test_a_file_without_metadata_works_with_the_options(foreign, model, exported, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    config = json.loads((exported["ckpt"] / "config.json").read_text())
    other = runtime.load(foreign, mean=config["mean"], std=config["std"], labels=labels, size="32x32")
    files = sorted(exported["images"].rglob("*.png"))
    assert [p.labels for p in other.predict(files)] == [p.labels for p in model.predict(files)]
    unnamed = runtime.load(foreign, mean=config["mean"], std=config["std"])
    assert unnamed.predict(files[:1])[0].labels[0] in {"0", "1", "2"}
    with pytest.raises(runtime.RuntimeInputError, match="fixed input size 32x32"):
        runtime.load(foreign, mean=config["mean"], std=config["std"], size=64)
    with pytest.raises(runtime.RuntimeInputError, match="2 labels"):
        runtime.load(foreign, mean=config["mean"], std=config["std"], labels="a,b").predict(files[:1])


def test_labels_from_json_and_comma_lists(tmp_path):
    (tmp_path / "l.json").write_text('["a", "b"]')
    assert runtime.read_labels(tmp_path / "l.json") == ["a", "b"]
    assert runtime.read_labels("x, y") == ["x", "y"]
    with pytest.raises(runtime.RuntimeInputError):
        runtime.read_labels("nofile")


def test_decoding_ahead_in_a_thread_gives_the_same_predictions(exported):
    model = runtime.load(exported["onnx"], provider="cpu")
    plain = model.predict([exported["images"]], batch_size=2)
    model.prefetch = True  # what a GPU session does by default
    ahead = model.predict([exported["images"]], batch_size=2)
    assert [p.to_dict() for p in ahead] == [p.to_dict() for p in plain]
