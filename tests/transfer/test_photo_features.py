"""The frozen feature pass keeps no decoded images: it streams the folder past the backbone once."""

from __future__ import annotations

import torch

import zoo.train
from zoo.data import dataset as ds
from zoo.testing import torch_threads
from zoo.transfer.finetune import FinetuneOptions, finetune


def test_feature_cached_path_keeps_no_decoded_images(tiny_folder, monkeypatch):
    made, given = [], {}
    real_load, real_trainer = ds.load_image_data, zoo.train.Trainer

    def load(*args, **kwargs):
        made.append(real_load(*args, **kwargs))
        return made[-1]

    class Spy(real_trainer):
        def __init__(self, model, train_data, val_data=None, *args, **kwargs):
            given.update(train=train_data, val=val_data)
            super().__init__(model, train_data, val_data, *args, **kwargs)

    monkeypatch.setattr(ds, "load_image_data", load)
    monkeypatch.setattr(zoo.train, "Trainer", Spy)
    with torch_threads(1):
        result = finetune("cifar8_resnet", str(tiny_folder), options=FinetuneOptions(feature_engine="torch"), epochs=1, batch_size=16,
                          progress=False, plot=False, metrics_format="none")
    assert result.cached_features
    assert made and all(d.train.images is None and d.val is not None and d.val.images is None for d in made)
    # Training and validation both run on feature tensors (no image is decoded after the pass).
    for part in ("train", "val"):
        x, y = given[part]
        assert x.dtype == torch.float32 and x.ndim == 2 and len(x) == len(y)


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _Fake:
    """An engine that gives given features and takes ``cost`` seconds of the fake clock."""

    name = "onnxruntime"

    def __init__(self, clock, cost, features):
        self.clock, self.cost, self.features = clock, cost, features

    def __call__(self, x):
        self.clock.now += self.cost
        return self.features(x)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def test_bf16_engine_is_chosen_only_when_faster_and_its_predictions_agree(monkeypatch):
    from zoo.testing import torch_threads

    with torch_threads(1):
        _check_probe(monkeypatch)


def _check_probe(monkeypatch):
    import zoo
    from zoo.transfer import engine as eng

    torch.manual_seed(0)
    model = zoo.create_model("cifar8_resnet", num_classes=2).eval()
    sample = torch.randn(8, 3, 32, 32)
    exact = eng.TorchFeatures(model)
    clock = _Clock()
    monkeypatch.setattr(eng.time, "perf_counter", clock)
    said = []
    bf16 = eng.TorchFeatures(model, "cpu", (True, torch.bfloat16))
    slow_onnx = _Fake(clock, 1.0, exact)
    assert eng._faster_of(slow_onnx, bf16, model, sample, said.append) is bf16 and "agree" in said[-1]
    fast_onnx = _Fake(clock, 0.0, exact)
    bf16_slow = _Fake(clock, 1.0, exact)
    bf16_slow.name = "torch bf16"
    assert eng._faster_of(fast_onnx, bf16_slow, model, sample, said.append) is fast_onnx
    # Faster but wrong: features that flip the head's predictions are refused, and the line says why.
    wrong = _Fake(clock, 0.0, lambda x: -exact(x) * 50)
    assert eng._faster_of(slow_onnx, wrong, model, sample, said.append) is slow_onnx
    assert "differ" in said[-1]


def test_a_folder_whose_files_are_all_unreadable_is_refused_with_the_skip_report(tmp_path):
    import pytest

    import zoo
    from zoo.errors import DataError

    for cls in ("cat", "dog"):
        (tmp_path / "d" / cls).mkdir(parents=True)
        for i in range(5):  # links to files that do not exist (a folder copied without its targets)
            (tmp_path / "d" / cls / f"{i}.jpg").symlink_to(tmp_path / "gone" / f"{i}.jpg")
    with pytest.raises(DataError, match=r"none of the (\d+) training images under .* could be read: skipped \1 files"
                                        r" \(\1 unreadable\)"):
        zoo.finetune("cifar8_resnet", str(tmp_path / "d"), epochs=1, progress=False, plot=False, cache=False)


def test_a_folder_left_with_one_readable_class_is_refused(tmp_path):
    import pytest

    import zoo
    from zoo.errors import DataError
    from zoo.testing import make_image_folder

    data = make_image_folder(tmp_path / "d", ("cat", "dog"), per_class=6, size=32, fmt="jpg")
    for image in (data / "dog").iterdir():
        image.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="only one class is left"):
        zoo.finetune("cifar8_resnet", str(data), epochs=1, progress=False, plot=False, cache=False)
