"""Shared fixtures. Nothing here needs ../shared or the network."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

# Tests must never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ZOO_OFFLINE", "1")
# The suite runs in float32 on every CPU (bf16 autocast would change numbers that tests compare);
# tests of the bf16 default fake the CPU flags themselves.
os.environ.setdefault("ZOO_CPU_BF16", "0")


@pytest.fixture(autouse=True)
def _backbone_cache(tmp_path_factory, monkeypatch):
    """Exported feature backbones go to a temporary cache, never the user's ~/.cache."""
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "zoo-cache"))


@pytest.fixture
def fresh_plugins(monkeypatch):
    """A plugin manager that loads anew, and is reset again afterwards."""
    from zoo import plugins

    monkeypatch.delenv("ZOO_PLUGINS", raising=False)
    plugins.reset()
    yield plugins
    plugins.reset()


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """Install a plugin distribution by writing its files and dist-info onto sys.path.

    ``fake_distribution("broken", "raise ImportError('x')")`` makes a
    distribution ``zoo-broken`` whose entry point ``broken`` points at a
    module with that source. importlib.metadata finds it like a pip install.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    made: list[str] = []

    def make(name: str, source: str, version: str = "1.0") -> Path:
        module = f"zoo_plugin_{name.replace('-', '_')}"
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"zoo_{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: zoo-{name}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[zoo]\n{name} = {module}\n")
        made.append(module)
        return site

    yield make
    for module in made:
        sys.modules.pop(module, None)
