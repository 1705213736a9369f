"""Every builtin architecture exports to ONNX and validates against PyTorch.

The timm/ and torchvision/ pass-throughs are left to their own libraries.
Heavy models (224-pixel ImageNet nets, or more than 5M parameters) are built
and exported once each and validated on random tensors at batch 1 and 2 with a
fixed spatial size; ResNets, GoogLeNet and ViTs (``img_size=64``) at 64x64.
AlexNet and VGG stay at 224: their adaptive pooling to 6x6/7x7 exports only
where the feature map divides evenly. The full validation (real images,
dynamic height/width) runs on every light model here and in test_export.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import zoo
from zoo import checkpoint
from zoo.export.onnx_export import export_onnx
from zoo.runtime import load

PASSTHROUGH = ("timm/", "torchvision/")
SPECS = [s for s in zoo.list_specs(source="builtin") if not s.name.startswith(PASSTHROUGH)]
SMALL_SIDE = 64
SHRINKABLE = ("resnet", "googlenet", "vit")  # families that run and export at 64x64


def _is_heavy(spec) -> bool:
    return spec.input_size[1] > 64 or (spec.params or 0) > 5_000_000


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_builtin_model_exports_and_validates(spec, tmp_path):
    heavy = _is_heavy(spec)
    shrink = heavy and spec.family in SHRINKABLE
    kwargs = {"img_size": SMALL_SIDE} if shrink and spec.family == "vit" else {}
    model = zoo.create_model(spec.name, **kwargs).eval()
    size = (spec.in_chans, SMALL_SIDE, SMALL_SIDE) if shrink else spec.input_size
    config = checkpoint.make_config(model, input_size=size)
    options = {"batch_size": 2, "real_images": False, "spatial": "static"} if heavy else {}
    path = export_onnx(model, config, tmp_path, **options)

    report = json.loads((tmp_path / "model.validation.json").read_text())
    assert report["passed"], report
    assert report["max_abs_diff"] is not None
    batches = {check["shape"][0] for check in report["checks"]}
    assert 1 in batches and max(batches) > 1, "validated at batch 1 and a larger batch"
    autoencoder = "autoencoder" in spec.tags and config["num_classes"] == 0
    assert report["task"] == ("reconstruction" if autoencoder else "classification")

    runtime_model = load(path, provider="cpu")
    assert runtime_model.preprocessing.input_size == tuple(size)
    x = np.random.default_rng(0).standard_normal((3, *size)).astype(np.float32)
    out = runtime_model.run(x)
    if autoencoder:
        assert out.reshape(3, -1).shape == x.reshape(3, -1).shape
    else:
        assert out.shape == (3, config["num_classes"])
        assert runtime_model.labels == config["class_names"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.validation.json"]
