"""Shared pieces of the export tests."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo import checkpoint

CLASSES = ("red", "green", "blue")


@pytest.fixture(scope="session")
def untrained_checkpoint():
    """``make(path, seed)``: a checkpoint of a freshly initialised ``net`` for the three colour classes."""

    def make(path, seed: int = 0, arch: str = "net"):
        torch.manual_seed(seed)
        model = zoo.create_model(arch, num_classes=len(CLASSES))
        return checkpoint.save_checkpoint(path, model, checkpoint.make_config(model, class_names=list(CLASSES)))

    return make
