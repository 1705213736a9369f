"""Autoencoder pretraining on unlabelled images, and its encoder as a backbone.

``pretrain_autoencoder`` trains one of the registry's ``ae_*`` autoencoders
(tag ``autoencoder``) to reconstruct the normalised images of a folder (class
sub-folders are ignored: every image under it counts) with an L1 or L2 loss,
and writes a checkpoint. ``encoder_classifier`` turns such a checkpoint into
a classifier under the classifier contract: the same architecture built with
``num_classes > 0`` is an ``EncoderClassifier`` whose encoder receives the
autoencoder's encoder weights, so its checkpoints rebuild with no adapter.
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from zoo.errors import CheckpointError, DataError, ZooError
from zoo.io import claim_run_dir
from zoo.registry import model_info
from zoo.runtime.skips import as_report


def is_autoencoder_spec(spec: Any) -> bool:
    """Registry convention: ``ae_*`` specs carry the tag ``autoencoder``."""
    return "autoencoder" in getattr(spec, "tags", ()) or getattr(spec, "family", "") == "autoencoder"


def autoencoder_names() -> list[str]:
    from zoo.plugins import list_specs

    return [s.name for s in list_specs() if is_autoencoder_spec(s)]


def check_autoencoder_arch(name: str) -> Any:
    """The spec of autoencoder ``name``; a clear error for other architectures."""
    from zoo.plugins import get_spec

    spec = get_spec(name)
    if not is_autoencoder_spec(spec):
        known = ", ".join(autoencoder_names()) or "none registered"
        raise ZooError(f"{name} is not an autoencoder; choose --arch from: {known}")
    return spec


# -- data ----------------------------------------------------------------------


def unlabelled_images(data: str | os.PathLike, input_size: tuple[int, int, int], *, limit: int | None = None,
                      seed: int = 0, threads: int | None = None) -> tuple[torch.Tensor, dict[str, int]]:
    """Every image under ``data`` (sub-folders included, labels ignored) as uint8 (N, C, H, W)."""
    from zoo.data.decode import decode_many
    from zoo.data.folder import IMAGE_EXTENSIONS, resolve_data_path
    from zoo.data.table import TableColumns, is_table, read_table
    from zoo.runtime.preprocess import walk_images

    root = resolve_data_path(data)
    if is_table(root):  # the images a table lists, its labels ignored
        paths = sorted(read_table(root, TableColumns(multi_label=True)).paths)
    else:
        paths = sorted(walk_images(root))
    if not paths:
        raise DataError(f"no images under {str(root)!r} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    if limit is not None and limit < len(paths):
        paths = sorted(random.Random(seed).sample(paths, limit))
    images, kept, skipped = decode_many(paths, input_size[0], tuple(input_size[1:]), threads=threads)
    if len(kept) == 0:
        raise DataError(f"none of the {len(paths)} images under {str(root)!r} could be read: {skipped.describe()}")
    return images, skipped


# -- pretraining ---------------------------------------------------------------


@dataclass
class PretrainResult:
    """What :func:`pretrain_autoencoder` did."""

    model: nn.Module
    config: dict[str, Any]
    train_loss: float
    val_loss: float | None
    images: int
    seconds: float
    path: Path | None = None


def pretrain_autoencoder(
    arch: str,
    data: str | os.PathLike | torch.Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    loss: str = "l2",
    noise: float = 0.0,
    val_fraction: float = 0.05,
    limit: int | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    model_kwargs: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
    **train_options: Any,
) -> PretrainResult:
    """Train autoencoder ``arch`` to reconstruct the images of ``data`` (a folder, or a uint8 tensor).

    It runs on the same loop as classification (:class:`zoo.train.Trainer`
    with a :class:`zoo.train.ReconstructionTask`), so devices, AMP, resume,
    DDP and checkpoints work the same: Adam with a one-cycle schedule; inputs
    are normalised with the spec's mean/std and the decoder reconstructs the
    normalised image. ``noise`` > 0 makes it a denoising autoencoder. With
    ``out`` the run writes ``OUT/best`` (lowest validation loss) and
    ``OUT/last``. Further keyword arguments are :class:`zoo.train.TrainConfig`
    fields (``device``, ``resume``, ``amp``, ...).
    """
    from zoo.factory import create_model
    from zoo.train import ReconstructionTask, TrainConfig, Trainer

    spec = check_autoencoder_arch(arch)
    task = ReconstructionTask(loss, noise)
    if not 0 <= val_fraction < 1:
        raise ZooError(f"the validation split must lie in [0, 1), got {val_fraction!r}")
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, optimizer="adam",
                      scheduler="onecycle", seed=seed, out=str(out) if out is not None else None, monitor="val_loss",
                      plot=False, **{"progress": log is not None, **train_options})
    claim_run_dir(cfg.out, resume=cfg.resume, overwrite=cfg.overwrite)  # before decoding the images
    torch.manual_seed(seed)
    t0 = time.time()
    if isinstance(data, torch.Tensor):
        images, skipped = data, {}
    else:
        images, skipped = unlabelled_images(data, spec.input_size, limit=limit, seed=seed)
    n_val = int(round(len(images) * val_fraction)) if len(images) >= 20 else 0
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    train_x, val_x = images[order[n_val:]], images[order[:n_val]]
    model = create_model(spec, num_classes=0, **(model_kwargs or {}))
    if not hasattr(model, "encoder") or not hasattr(model, "decoder"):
        raise ZooError(f"{arch} built no autoencoder (it lacks .encoder/.decoder); is its spec tagged wrongly?")
    say = log or (lambda line: None)
    if skipped:
        say(as_report(skipped).describe())
    say(f"pretraining {arch} on {len(train_x)} images ({len(val_x)} held out), {loss} loss, {epochs} epochs")
    no_labels = torch.zeros(len(train_x), dtype=torch.long)
    val = (val_x, torch.zeros(len(val_x), dtype=torch.long)) if len(val_x) else None
    trainer = Trainer(model, (train_x, no_labels), val, cfg, class_names=[], input_size=tuple(images.shape[1:]),
                      mean=spec.mean, std=spec.std, task=task, extra_config={"task": "autoencoder"})
    result = trainer.fit()
    best = result.best_metrics or result.final
    if result.best_path is not None:
        from zoo.checkpoint import load_checkpoint

        model, config = load_checkpoint(result.best_path)
    else:
        config = trainer.checkpoint_config(best)
    return PretrainResult(model.eval(), config, float(best.get("train_loss", math.nan)), best.get("val_loss"),
                          len(train_x), time.time() - t0, result.best_path)


# -- transfer ------------------------------------------------------------------


def encoder_classifier(checkpoint: str | os.PathLike, num_classes: int) -> tuple[nn.Module, dict[str, Any]]:
    """A classifier whose backbone is the encoder of the autoencoder checkpoint. Returns ``(model, config)``."""
    from zoo.factory import create_model
    from zoo.io import load_config, load_state_dict
    from zoo.plugins import get_spec

    config = load_config(checkpoint)
    arch = config.get("architecture", "?")
    spec = get_spec(arch)
    if not is_autoencoder_spec(spec) or int(config.get("num_classes", 0)) != 0:
        raise CheckpointError(
            f"--encoder needs an autoencoder checkpoint (from 'zoo pretrain autoencoder'), but {str(checkpoint)!r}"
            f" holds a {arch} classifier; finetune it directly with 'zoo finetune {checkpoint}'"
        )
    model = create_model(spec, num_classes=num_classes, in_chans=int(config.get("in_chans", spec.in_chans)),
                         **dict(config.get("model_kwargs", {})))
    loader = getattr(model, "load_encoder_state", None)
    if loader is None:
        raise CheckpointError(f"{arch} with num_classes={num_classes} is not an encoder classifier")
    loader(load_state_dict(checkpoint))
    model_info(model).pretrained = {"path": str(checkpoint), "source": "encoder", "tag": None, "missing": [], "dropped": []}
    return model, config
