"""Fixtures for the transfer tests: offline caches in tmp dirs, no network, small data."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty torch hub and Hugging Face caches in a temporary directory."""
    torch_home = tmp_path / "torch_home"
    hf_home = tmp_path / "hf_home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    return torch_home, hf_home


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """A learnable 2-class image folder with train/ and val/, 32x32."""
    from zoo.testing import make_image_folder

    return make_image_folder(tmp_path_factory.mktemp("cats"), ("cat", "dog"), per_class=16, size=32,
                             split=True, val_per_class=8)
