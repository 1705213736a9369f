"""The timm/ and torchvision/ pass-throughs: data files in step with the libraries, samples that build."""

from __future__ import annotations

import pytest
import torch

from zoo.default_plugins._passthrough import load_rows
from zoo.plugins import get_spec
from zoo.summary import count_parameters

TIMM_ROWS = load_rows("timm_models.json")
TV_ROWS = load_rows("torchvision_models.json")
REGEN = "stale: regenerate with python -m zoo.tools.passthrough"


def test_timm_names_match_the_installed_timm():
    import timm

    assert {r["name"] for r in TIMM_ROWS} == set(timm.list_models()), REGEN


def test_timm_rows_match_the_default_configs():
    from timm.models import get_pretrained_cfg

    for row in TIMM_ROWS:
        cfg = get_pretrained_cfg(row["name"])
        assert tuple(row["input_size"]) == tuple(cfg.input_size), row["name"]
        assert row["num_classes"] == cfg.num_classes, row["name"]
        assert row["mean"] == pytest.approx(list(cfg.mean), abs=1e-6), row["name"]
        if cfg.hf_hub_id:
            assert row["weights"][0]["hf_hub_id"] == cfg.hf_hub_id, row["name"]


def test_torchvision_names_and_weights_match_the_installed_torchvision():
    from torchvision import models

    assert {r["name"] for r in TV_ROWS} == set(models.list_models(module=models)), REGEN
    for row in TV_ROWS:
        urls = [member.url for member in models.get_model_weights(row["name"])]
        assert [w["url"] for w in row["weights"]] == urls, row["name"]
        # One of the weight sets fits the default build (vit_h_14's first is for 518x518 inputs).
        published = {member.meta["num_params"] for member in models.get_model_weights(row["name"])}
        if row["name"] == "inception_v3":  # torchvision's count includes the auxiliary head, which we leave out
            published = {n - 3_326_696 for n in published}
        assert row["params"] in published, row["name"]


def test_pass_throughs_are_registered(fresh_plugins):
    import zoo

    assert len(zoo.list_models("timm/*")) == len(TIMM_ROWS)
    assert len(zoo.list_models("torchvision/*")) == len(TV_ROWS)
    spec = get_spec("timm/vit_base_patch16_224")
    assert spec.classifier == "head" and spec.mean == (0.5, 0.5, 0.5) and spec.params == 86_567_656
    assert spec.weights[0].hf_hub_id == "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k"
    tv = get_spec("torchvision/resnet50")
    assert [w.tag for w in tv.weights] == ["tv_in1k", "tv2_in1k"] and tv.weights[0].layout == "torchvision"
    assert get_spec("torchvision/densenet121").weights[0].layout == "torchvision_densenet"


SAMPLED = ["timm/test_vit", "timm/test_efficientnet", "timm/test_convnext", "timm/test_resnet",
           "torchvision/mobilenet_v3_small", "torchvision/shufflenet_v2_x0_5", "torchvision/mnasnet0_5"]


@pytest.mark.parametrize("name", SAMPLED)
def test_sampled_pass_throughs_follow_the_contract(name, built, contract_problems):
    spec = get_spec(name)
    model = built(name)
    assert count_parameters(model) == spec.params
    with torch.no_grad():
        assert tuple(model(torch.randn(1, *spec.input_size)).shape) == (1, spec.num_classes)
    assert contract_problems(spec, model) == []
