"""Built-in dataset scheme ``demo``: small image folders shipped inside the package (torch-free)."""

from __future__ import annotations

from pathlib import Path

import zoo
from zoo.errors import DataError
from zoo.extensions import DatasetSource

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEMO_DATASETS = {"cats": "demo_cats"}


def resolve_demo(name: str) -> Path:
    """The folder of ``demo:NAME`` (``train/`` and ``val/`` inside)."""
    folder = DEMO_DATASETS.get(name)
    if folder is None:
        raise DataError(f"unknown demo dataset {name!r}; known: {', '.join(sorted(DEMO_DATASETS))}")
    path = ASSETS / folder
    if not path.is_dir():
        raise DataError(f"the demo data {str(path)!r} is missing; reinstall zoo")
    return path


@zoo.hookimpl
def register_datasets(register):
    """Register the ``demo`` scheme (``demo:cats``)."""
    register(
        DatasetSource(
            scheme="demo",
            resolve="zoo.default_plugins.datasets:resolve_demo",
            names=tuple(sorted(DEMO_DATASETS)),
            description="small image folders shipped with zoo (demo:cats: CIFAR-10 cat vs dog, 200+100 per class)",
        )
    )
