"""Fixtures for the architecture tests: every model is built at most once per session."""

from __future__ import annotations

from typing import Any, Callable

import pytest


@pytest.fixture(scope="session")
def built() -> Callable[[str], Any]:
    """``built(name)``: the model registered as ``name`` at its defaults, in eval mode.

    Models under 30M parameters are kept for the session, so tests that share
    one build it once; bigger ones (VGG, ResNet-101/152, ViT-B) are used by
    one test each and are not kept, so the suite never holds gigabytes of them.
    """
    import torch

    from zoo.factory import create_model
    from zoo.summary import count_parameters

    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name in cache:
            return cache[name]
        torch.manual_seed(0)
        model = create_model(name).eval()
        if count_parameters(model) < 30_000_000:
            cache[name] = model
        return model

    return get


@pytest.fixture(scope="session")
def contract_problems() -> Callable[[Any, Any], list[str]]:
    """``contract_problems(spec, model)``: zoo.testing.check_model run on an already built model.

    check_model builds through the spec's builder; this hands it the cached
    model (its head reset to the requested width), so no heavy model is built twice.
    """
    from dataclasses import replace

    from zoo.testing import check_model

    def check(spec: Any, model: Any) -> list[str]:
        def builder(num_classes: int, in_chans: int, **kwargs: Any) -> Any:
            model.reset_classifier(num_classes)
            return model

        problems = check_model(replace(spec, builder=builder), num_classes=3, batch=1)
        model.reset_classifier(spec.num_classes)
        return problems

    return check
