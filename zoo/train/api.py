"""The one-call training API: ``zoo.fit(model, data, ...)``."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Sequence

from zoo.errors import DataError
from zoo.io import claim_run_dir
from zoo.registry import model_info
from zoo.train.config import TrainConfig
from zoo.train.trainer import Trainer, TrainResult

TRAINER_KEYS = frozenset({"class_names", "input_size", "mean", "std", "param_groups", "callbacks", "extra_config",
                          "train_mode", "dist", "task", "forward_module"})


def fit(
    model: Any,
    data: Any,
    *,
    out: str | os.PathLike | None = None,
    val_data: Any = None,
    config: TrainConfig | None = None,
    **options: Any,
) -> TrainResult:
    """Train ``model`` (a registry name or a built model) on ``data`` and return a :class:`TrainResult`.

    ``data`` is an image folder path or ``scheme:name`` (decoded and split
    as ``zoo train`` does), an :class:`zoo.data.ImageData`, or anything
    :class:`Trainer` accepts. Keyword options are :class:`TrainConfig`
    fields, or Trainer arguments (``param_groups``, ``callbacks``, ...).
    """
    trainer_kwargs = {k: options.pop(k) for k in list(options) if k in TRAINER_KEYS}
    if out is not None:
        options["out"] = str(out)
    cfg = replace(config, **options) if config is not None else TrainConfig(**options)
    claim_run_dir(cfg.out, resume=cfg.resume, overwrite=cfg.overwrite)  # before decoding the folder
    if isinstance(data, (str, os.PathLike)):
        data = load_folder_for(model, data, cfg, input_size=trainer_kwargs.get("input_size"))
    return Trainer(model, data, val_data, cfg, **trainer_kwargs).fit()


def train(*args: Any, **kwargs: Any) -> TrainResult:
    """Deprecated spelling of :func:`fit` (``zoo.train(...)``); it goes in the next release."""
    import warnings

    warnings.warn("zoo.train(...) is deprecated and goes in the next release; call zoo.fit(...) instead",
                  DeprecationWarning, stacklevel=3)
    return fit(*args, **kwargs)


def load_folder_for(model: Any, data: str | os.PathLike, cfg: TrainConfig, input_size: Sequence[int] | None = None):
    """Decode the image folder ``data`` at the input size ``model`` (a name or a built model) expects."""
    from zoo.data.dataset import load_image_data
    from zoo.data.table import table_columns
    from zoo.plugins import get_spec

    size = input_size or cfg.input_size
    if size is not None:  # a size the model cannot take fails here, not in its first batch
        from zoo.models.probe import check_input_size

        check_input_size(model, size, cfg.model_args)
    if size is None:
        info = None if isinstance(model, str) else model_info(model)
        if not isinstance(model, str) and info is None:
            raise DataError("the model's input size is unknown; pass input_size=(C, H, W)")
        spec = get_spec(model if isinstance(model, str) else info.name)
        in_chans = cfg.model_args.get("in_chans", spec.in_chans) if info is None else info.in_chans
        size = (in_chans, *spec.input_size[1:])
    return load_image_data(data, size, val_split=cfg.val_split, seed=cfg.seed, cache=cfg.cache,
                           cache_budget_mb=cfg.cache_mb, verbose=cfg.progress, columns=table_columns(cfg))
