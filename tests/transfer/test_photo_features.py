"""The frozen feature pass keeps no decoded images: it streams the folder past the backbone once."""

from __future__ import annotations

import torch

import zoo.train
from zoo.data import dataset as ds
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
    result = finetune("cifar8_resnet", str(tiny_folder), options=FinetuneOptions(feature_engine="torch"), epochs=1, batch_size=16,
                      progress=False, plot=False, metrics_format="none")
    assert result.cached_features
    assert made and all(d.train.images is None and d.val is not None and d.val.images is None for d in made)
    # Training and validation both run on feature tensors (no image is decoded after the pass).
    for part in ("train", "val"):
        x, y = given[part]
        assert x.dtype == torch.float32 and x.ndim == 2 and len(x) == len(y)
