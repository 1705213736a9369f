"""The weight descriptions in the built-in specs match the installed torchvision and timm."""

from __future__ import annotations

import pytest

from zoo.default_plugins.models import builtin_specs

WEIGHTED = [s for s in builtin_specs() if s.weights]


def _torchvision_members(arch: str):
    from torchvision import models

    return {member.url: member for member in models.get_model_weights(arch)}


@pytest.mark.parametrize("spec", WEIGHTED, ids=lambda s: s.name)
def test_weights_exist_in_the_libraries(spec):
    import timm

    for w in spec.weights:
        assert w.num_classes == 1000 and len(w.mean) == len(w.std) == 3
        if w.layout == "torchvision":
            member = _torchvision_members(spec.name)[w.url]
            assert w.filename == w.url.rsplit("/", 1)[-1]
            assert member.meta["num_params"] == spec.params
        else:
            assert w.layout == "timm" and w.hf_hub_id.startswith("timm/")
            arch, tag = w.hf_hub_id[len("timm/"):].split(".", 1)
            assert arch == spec.name and tag == w.tag
            assert f"{arch}.{tag}" in timm.list_pretrained(f"{arch}.*")
            cfg = timm.models.get_pretrained_cfg(f"{arch}.{tag}")
            assert tuple(cfg.mean) == w.mean and tuple(cfg.std) == w.std


def test_resnets_list_torchvision_weights_first():
    specs = {s.name: s for s in WEIGHTED}
    for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
        assert specs[name].weights[0].tag == "tv_in1k"
