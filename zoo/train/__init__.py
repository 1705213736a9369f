"""Training: the loop, optimisers and schedules, metrics, checkpoints, evaluation.

The one-call API mirrors ``zoo train``::

    import zoo
    result = zoo.fit("net", "path/to/folder", out="runs/net", epochs=10, lr=1e-2)
    result.val_acc, result.best_path, result.history

``Trainer`` is the object underneath, and what ``zoo finetune`` builds on::

    from zoo.train import Trainer, TrainConfig, Callback
    trainer = Trainer(model, train_data, val_data, TrainConfig(epochs=5, out="runs/x"), **extras)
    result = trainer.fit()

``model``
    a registry name (built with ``create_model(name, num_classes=len(class_names), **config.model_args)``
    after seeding) or an already-built ``nn.Module``. Checkpoints need the model's
    :class:`zoo.ModelInfo` record (``zoo.model_info(model)``, set by ``zoo.create_model``); its
    ``adapters`` are saved into config.json so :func:`zoo.checkpoint.build_model` can rebuild
    swapped heads.

``train_data`` / ``val_data``
    * :class:`zoo.data.ImageData` (from :func:`zoo.data.load_image_data`): its train split, and its
      val split unless ``val_data`` is given; class names and input size come with it;
    * :class:`zoo.data.ImageSplit`: cached uint8 images (batched from memory) or paths (streamed);
    * ``(inputs, labels)`` tensors or a ``TensorDataset`` of two: uint8 inputs are treated as images
      (scaled to [0, 1], normalised); **float inputs pass through unchanged** (cached features);
    * any map-style ``Dataset`` returning ``(input, label)`` (same dtype rule);
    * for tensors and Datasets pass ``class_names=`` (else "0".."K-1" from the labels).

Keyword arguments of ``Trainer`` (besides ``TrainConfig`` fields given as keywords)
    ``class_names``, ``input_size`` (C, H, W), ``mean``/``std`` (e.g. the pretrained weights' own;
    default: computed on the cached training images when ``config.normalize == "dataset"``, the
    spec's with ``"model"``);
    ``param_groups``: a list of optimizer groups (``{"params": [...], "lr": 1e-4}``; discriminative
    learning rates) or a callable ``f(model) -> groups``. Without it the optimizer holds *every*
    parameter, frozen ones included (they receive no gradient and are skipped), so unfreezing is
    just ``p.requires_grad_(True)``. With custom groups, add newly trainable parameters through
    ``trainer.add_param_group({"params": [...], "lr": ...})``, which also extends the LR schedule;
    ``callbacks``: :class:`Callback` objects (events ``on_fit_start``, ``on_epoch_start``, ``before_batch``,
    ``after_loss``, ``before_optimizer_step``, ``after_optimizer_step``, ``on_batch_end``,
    ``on_validation_end``, ``on_epoch_end``, ``on_exception``, ``on_fit_end``; state through
    ``state_dict``/``load_state_dict``, saved in ``last/`` and restored by resume; see
    :class:`Callback` and docs/training.md, "Callbacks") or plain functions ``f(trainer, epoch)`` run at
    each epoch start. Epochs are 1-based. ``on_epoch_start`` runs before the model is put into train
    mode, so a callback may freeze/unfreeze there. ``accumulate``, ``ema``, ``mixup``/``cutmix`` are
    callbacks of :mod:`zoo.train.extras`, added before the caller's;
    ``train_mode``: a function ``f(model)`` that puts the model into training mode each epoch.
    The default, :func:`model_train_mode`, calls ``model.zoo_train_mode()`` when the model has one
    (keep frozen BatchNorm in eval there) and ``model.train()`` otherwise;
    ``extra_config``: extra entries for config.json (merged into :func:`zoo.checkpoint.make_config`);
    ``dist``: a :class:`zoo.train.distributed.DistContext` (default: from torchrun's environment);
    ``task``: a :class:`zoo.train.tasks.Task` (default classification, or :class:`MultiLabelTask` for
    multi-label data or ``multi_label=True``; :class:`ReconstructionTask` trains autoencoders); ``forward_module``: the part of the model the loop runs (default the model; the
    classifier alone when training on cached features), while checkpoints save the whole model.

Useful attributes while training: ``trainer.state`` (the run's :class:`zoo.train.state.RunState`:
epoch, step, position, history, best value and epoch, bad epochs, stop flag), ``trainer.model``
(unwrapped), ``trainer.optimizer``, ``trainer.scheduler``, ``trainer.history`` and ``trainer.epoch``
(read from the state), ``trainer.device``, ``trainer.config``. ``trainer.checkpoint_config(metrics)`` gives the config.json of the current model.

Outputs under ``config.out``: ``best/`` and ``last/`` checkpoint directories (``last`` also holds the
optimizer/scheduler/epoch/RNG state for ``resume=OUT/last``), ``metrics.jsonl`` (and/or ``.csv``), and
``curves.png``. Ctrl-C stops at the next step boundary, saves ``last`` with the position in the epoch
(resuming it ends bit-identical to an uninterrupted run; see :mod:`zoo.train.checkpointer` for the resume
rule) and returns a result with ``stopped == "interrupted"``; a
NaN/inf loss raises :class:`TrainingDivergedError` and keeps the last good checkpoint. ``fit`` leaves
torch's thread count and the global random generators as it found them (:mod:`zoo.train.scope`).

:func:`evaluate` scores a checkpoint on an image folder (accuracy, per-class accuracy, confusion matrix).
"""

import sys
import types
from typing import Any

from zoo.devices import select_device
from zoo.train.api import fit, load_folder_for, train
from zoo.train.callbacks import Callback, ProgressReporter
from zoo.train.config import TrainConfig
from zoo.train.evaluate import EvalResult, evaluate, format_report
from zoo.train.tasks import ClassificationTask, MultiLabelTask, ReconstructionTask, Task
from zoo.train.trainer import (
    Trainer,
    TrainingDivergedError,
    TrainResult,
    model_train_mode,
)

__all__ = [
    "Callback", "ClassificationTask", "EvalResult", "MultiLabelTask", "ProgressReporter", "ReconstructionTask", "Task",
    "TrainConfig", "TrainResult", "Trainer", "TrainingDivergedError", "evaluate", "fit", "format_report",
    "load_folder_for", "model_train_mode", "select_device", "train",
]


class _DeprecatedCallableModule(types.ModuleType):
    """``zoo.train(...)`` still works for one release, with a deprecation warning: use ``zoo.fit``.

    ``zoo.train`` is this package, so a function of that name on ``zoo`` would
    be shadowed as soon as anything imports ``zoo.train.x``; the one-call API
    is therefore ``zoo.fit``.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> TrainResult:
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _DeprecatedCallableModule
