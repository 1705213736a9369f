"""zoo: a plugin-based model zoo and transfer-learning toolkit for PyTorch.

Importing ``zoo`` stays cheap: the names that need torch load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from zoo.errors import ZooError  # noqa: E402
from zoo.extensions import DatasetSource, ExportFormat, WeightSource  # noqa: E402
from zoo.hookspecs import hookimpl  # noqa: E402  (``@zoo.hookimpl`` marks a plugin's hooks)
from zoo.plugins import get_spec, list_models, list_specs  # noqa: E402
from zoo.registry import ModelInfo, ModelSpec, PretrainedWeights, model_info  # noqa: E402

# name -> "module:attribute", imported when first touched
_LAZY = {
    "create_model": "zoo.factory:create_model",
    "load": "zoo.checkpoint:load",
    "load_checkpoint": "zoo.checkpoint:load_checkpoint",
    "save_checkpoint": "zoo.checkpoint:save_checkpoint",
    "fit": "zoo.train.api:fit",
    "train": "zoo.train.api:train",  # deprecated spelling of fit
    "Trainer": "zoo.train:Trainer",
    "TrainConfig": "zoo.train:TrainConfig",
    "evaluate": "zoo.train:evaluate",
    "finetune": "zoo.transfer.recipes:finetune_with_recipe",
}

__all__ = [
    "__version__",
    "hookimpl",
    "ZooError",
    "ModelInfo",
    "ModelSpec",
    "model_info",
    "PretrainedWeights",
    "WeightSource",
    "DatasetSource",
    "ExportFormat",
    "list_models",
    "list_specs",
    "get_spec",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    ref = _LAZY.get(name)
    if ref is None:
        raise AttributeError(f"module 'zoo' has no attribute {name!r}")
    from zoo._lazy import resolve

    value = resolve(ref)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover
    from zoo.checkpoint import load, load_checkpoint, save_checkpoint  # noqa: F401
    from zoo.factory import create_model  # noqa: F401
