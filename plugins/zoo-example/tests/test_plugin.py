"""The example plugin, checked with zoo's conformance kit."""

import zoo_example.plugin

from zoo.testing import check_plugin


def test_plugin_conforms():
    report = check_plugin(zoo_example.plugin, name="example")
    assert report.models == ["example_tinynet"]
    assert report.exporters == ["torchscript"]
    assert report.commands == ["count-params"]


def test_torchscript_export_matches_eager(tmp_path):
    import torch

    from zoo_example.exporters import export_torchscript
    from zoo_example.models import tinynet

    model = tinynet(num_classes=4).eval()
    path = export_torchscript(model, {"input_size": [3, 32, 32]}, tmp_path)
    loaded = torch.jit.load(str(path))
    x = torch.randn(3, 3, 32, 32)
    assert torch.allclose(loaded(x), model(x), atol=1e-5)
