"""Fixtures for the training tests."""

from __future__ import annotations

import pytest

from zoo.testing import torch_threads


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread for these tiny models (see zoo.testing.torch_threads)."""
    with torch_threads(1):
        yield
