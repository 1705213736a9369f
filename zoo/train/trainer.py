"""The training loop: one Trainer for every task, built from parts.

* :mod:`zoo.train.tasks`: what a batch's loss and metrics are (classification, reconstruction);
* :mod:`zoo.train.checkpointer`: ``best/``, ``last/`` and the ``--resume`` rule;
* :mod:`zoo.train.callbacks`: progress, and the hooks callers add;
* :mod:`zoo.train.prepare`: splits, labels, input size and mean/std from what the caller passed.

The Trainer itself places things on the device, builds batches, the
optimizer and the schedule, and runs the epochs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from zoo.errors import CheckpointError, DataError, ZooError
from zoo.io import claim_run_dir
from zoo.registry import model_info
from zoo.train import checkpointer as ckpt
from zoo.train import epoch as epoch_steps
from zoo.train.callbacks import Callback, FunctionCallback, ProgressReporter
from zoo.train.config import TrainConfig
from zoo.train.epoch import TrainingDivergedError, _StopRequested, stop_on_ctrl_c, track_best
from zoo.train.prepare import (choose_mean_std, default_input_size, default_threads, labels_of, length,
                               make_run_batches, place)
from zoo.train.result import TrainResult, model_train_mode
from zoo.train.tasks import ClassificationTask, Task

__all__ = ["Trainer", "TrainResult", "TrainingDivergedError", "model_train_mode"]


class Trainer:
    """Train a model on a task; see :mod:`zoo.train` for the full API."""

    def __init__(
        self,
        model: Any,
        train_data: Any,
        val_data: Any = None,
        config: TrainConfig | None = None,
        *,
        class_names: Sequence[str] | None = None,
        input_size: Sequence[int] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        param_groups: Sequence[Mapping[str, Any]] | Callable[[Any], Sequence[Mapping[str, Any]]] | None = None,
        callbacks: Iterable[Callback | Callable[["Trainer", int], None]] = (),
        extra_config: Mapping[str, Any] | None = None,
        train_mode: Callable[[Any], None] | None = None,
        dist: Any = None,
        task: Task | None = None,
        forward_module: Any = None,
        **options: Any,
    ) -> None:
        import torch

        from zoo.data.dataset import ImageData

        unknown = set(options) - TrainConfig.names()
        if unknown:
            raise ZooError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        self.config = cfg = replace(config, **options) if config is not None else TrainConfig(**options)
        if dist is None:
            from zoo.train.distributed import from_env

            dist = from_env()
        self.dist = dist
        self.task = task or ClassificationTask(cfg.loss, cfg.label_smoothing)
        self.skipped: dict[str, int] = {}
        self.data_root = None
        if isinstance(train_data, ImageData):
            val_data = train_data.val if val_data is None else val_data
            class_names = class_names or train_data.class_names
            input_size = input_size or train_data.input_size
            self.skipped, self.data_root = train_data.skipped, str(train_data.root)
            train_data = train_data.train
        self.train_data, self.val_data = train_data, val_data
        if class_names is None:
            labels = labels_of(train_data)
            if labels is None:
                raise DataError("pass class_names= when training on a dataset without labels tensor")
            class_names = [str(i) for i in range(int(labels.max()) + 1)] if len(labels) else []
        self.class_names = list(class_names)
        if isinstance(model, str):
            from zoo.factory import create_model

            torch.manual_seed(cfg.seed)  # the same initial weights for the same seed
            model = create_model(model, num_classes=len(self.class_names), **dict(cfg.model_args))
        self.model = model
        # The part the loop runs: the whole model, or only its classifier on cached features.
        self.forward_module = forward_module if forward_module is not None else model
        self.input_size = default_input_size(model, input_size if input_size is not None else cfg.input_size)
        self.mean = list(mean) if mean is not None else None
        self.std = list(std) if std is not None else None
        self.param_groups = param_groups
        self.callbacks = [cb if isinstance(cb, Callback) else FunctionCallback(cb) for cb in callbacks]
        self.reporter = ProgressReporter() if (cfg.progress and dist.is_main) else None
        if self.reporter is not None:
            self.callbacks.insert(0, self.reporter)
        self.extra_config = dict(extra_config or {})
        self.train_mode = train_mode or model_train_mode
        self.out = Path(cfg.out) if cfg.out else None
        self.checkpointer = ckpt.Checkpointer(self.out, enabled=dist.is_main, metrics_format=cfg.metrics_format)
        self.history: list[dict[str, Any]] = []
        self.epoch = 0  # last completed epoch
        self.position: dict[str, Any] | None = None  # where a mid-epoch checkpoint stopped
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.optimizer = self.scheduler = self.scaler = None
        self._stop_requested = False
        self._setup_done = False

    # -- setup -------------------------------------------------------------------

    def setup(self) -> None:
        """Choose the device, normalisation, batches, optimizer and schedule; load --resume."""
        if self._setup_done:
            return
        import torch

        from zoo.data.transforms import BatchAugment, Normalize, parse_augment
        from zoo.train.optim import build_optimizer, build_scheduler

        cfg = self.config
        if self.out is not None and model_info(self.model) is None:
            raise CheckpointError(
                "checkpoints need a model built by zoo.create_model (it records the architecture);"
                " build it that way, or train without out="
            )
        claim_run_dir(self.out, resume=cfg.resume, overwrite=cfg.overwrite, main=self.dist.is_main)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        n_train = length(self.train_data)
        if self.dist.enabled and n_train is not None and n_train < self.dist.world_size:
            raise DataError(
                f"{self.dist.world_size} processes but only {n_train} training samples: every rank needs at"
                " least one; use fewer processes (--nproc / --nproc_per_node)"
            )
        self.device, self.amp, self.amp_dtype, self.channels_last = place(cfg, self.dist)
        if not cfg.threads and self.device.type == "cpu":
            threads = default_threads(self.model, self.forward_module, self.input_size)
            if threads:
                torch.set_num_threads(threads)
        state = resume_config = None
        if cfg.resume:
            state, resume_config = ckpt.Checkpointer.read(cfg.resume, self.model, self.class_names)
            ckpt.check_epochs_left(state, cfg.epochs, cfg.resume)
            self.mean = self.mean or resume_config.get("mean")
            self.std = self.std or resume_config.get("std")
        if self.mean is None or self.std is None:
            self.mean, self.std = choose_mean_std(self.train_data, self.model, cfg.normalize, self.input_size)
        self.augs = parse_augment(cfg.augment)
        self.normalize = Normalize(self.mean, self.std, BatchAugment(self.augs))
        self.train_batches, self.val_batches = make_run_batches(self)
        model = self.model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if state is not None:
            ckpt.Checkpointer.load_weights(cfg.resume, self.model)
            ckpt.check_position(self, state, cfg.resume)
        groups = self.param_groups(model) if callable(self.param_groups) else self.param_groups
        if groups is None:
            # Every parameter, frozen ones included: they get no gradient and the
            # optimizer skips them, so a callback can unfreeze by flipping requires_grad.
            groups = [{"params": list(self.forward_module.parameters())}]
        self.optimizer = build_optimizer([dict(g) for g in groups], cfg.optimizer, lr=cfg.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay)
        if state is not None:
            ckpt.restore_optimizer(self, state, cfg.resume)
        steps = len(self.train_batches)
        self.scheduler = build_scheduler(self.optimizer, cfg.scheduler, epochs=cfg.epochs, steps_per_epoch=steps,
                                         step_size=cfg.step_size, milestones=cfg.milestones, gamma=cfg.gamma)
        self.scaler = torch.amp.GradScaler("cuda") if (self.amp and self.amp_dtype == torch.float16) else None
        self.net = self._wrap(self.forward_module)
        if state is not None:
            ckpt.restore_progress(self, state)
            done = self.epoch * steps + (int(self.position["step"]) if self.position else 0)
            ckpt.fast_forward(self.scheduler, min(done, cfg.epochs * steps))
        self._setup_done = True

    def _wrap(self, module: Any) -> Any:
        """The module the loop calls: ``module``, or its DistributedDataParallel wrapper."""
        if not self.dist.enabled:
            return module
        from zoo.train.distributed import wrap_model

        return wrap_model(module, self.device)

    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Add a parameter group mid-training (e.g. an unfrozen stage with its own lr)."""
        from zoo.train.optim import extend_scheduler

        group = dict(group)
        group.setdefault("lr", self.config.lr)
        self.optimizer.add_param_group(group)
        extend_scheduler(self.scheduler, self.optimizer.param_groups[-1])
        self._refresh_wrapper()

    def _refresh_wrapper(self) -> None:
        # DDP fixes the set of synchronised parameters when it is built.
        if self.dist.enabled:
            import gc

            from zoo.train.distributed import needs_rewrap

            if needs_rewrap(self.net):
                # The old wrapper's gradient hooks must be gone before a new one registers its own.
                self.net = None
                gc.collect()
                self.net = self._wrap(self.forward_module)

    def request_stop(self) -> None:
        """End the run at the next step boundary and save a checkpoint that resumes exactly (as Ctrl-C does)."""
        self._stop_requested = True

    def start_step(self, epoch: int) -> int:
        """The batch ``epoch`` starts at: 0, or where a mid-epoch checkpoint stopped."""
        return int(self.position["step"]) if self.position and epoch == self.epoch + 1 else 0

    def say(self, text: str) -> None:
        if self.reporter is not None:
            self.reporter.say(text)

    # -- the loop ----------------------------------------------------------------

    def fit(self) -> TrainResult:
        """Train for ``config.epochs`` epochs (from the resumed position on) and return the result."""
        self.setup()
        cfg = self.config
        for cb in self.callbacks:
            cb.on_fit_start(self)
        if self.out is not None and self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if cfg.plot:
                from zoo.train.metrics import preload_matplotlib

                preload_matplotlib()  # its import overlaps the training instead of following it
        try:
            with stop_on_ctrl_c(self):
                stopped = self._epochs()
        except _StopRequested as stop:
            stopped = epoch_steps.save_interrupted(self, stop.position)
        except KeyboardInterrupt:
            stopped = epoch_steps.save_interrupted(self, None)
        except Exception as exc:
            from zoo.train.distributed import raise_lost_rank

            raise_lost_rank(self, exc)
            raise
        result = TrainResult.from_trainer(self, stopped)
        if self.out is not None and self.dist.is_main and cfg.plot and self.history:
            from zoo.train.metrics import plot_curves

            info = model_info(self.model)
            plot_curves(self.history, self.out / "curves.png", title=info.name if info else "")
        for cb in self.callbacks:
            cb.on_fit_end(self, result)
        if stopped != "interrupted" and self.dist.enabled:
            # Release DDP (its reducer holds the process group) before leaving the
            # group; after Ctrl-C the ranks may stand at different collectives, so
            # no farewell there: the process just exits.
            import gc

            self.net = self.forward_module
            gc.collect()
            self.dist.close()
        return result

    def _epochs(self) -> str:
        """Run the remaining epochs; returns why they ended."""
        cfg = self.config
        for epoch in range(self.epoch + 1, cfg.epochs + 1):
            for cb in self.callbacks:
                cb.on_epoch_start(self, epoch)
            self._refresh_wrapper()
            row = self.train_epoch(epoch)
            if self.val_batches is not None:
                row.update(self.validate())
            row["lr"] = self.optimizer.param_groups[0]["lr"]
            self.epoch, self.position = epoch, None
            self.history.append(row)
            improved = track_best(self, row)
            self.checkpointer.save(self, row, improved)
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, row)
            if self._stop_requested:
                self.say(f"interrupted after epoch {epoch}: its checkpoint is saved")
                return "interrupted"
            if cfg.early_stop is not None and self.bad_epochs >= cfg.early_stop:
                self.say(f"early stopping: {cfg.monitor} did not improve for {cfg.early_stop} epochs")
                return "early_stop"
        return "completed"

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the training batches; returns the epoch's train metrics."""
        return epoch_steps.train_epoch(self, epoch)

    def validate(self, batches: Any = None) -> dict[str, float]:
        """Loss (and accuracy) on the validation batches, summed over ranks."""
        return epoch_steps.validate(self, batches)

    # -- output ------------------------------------------------------------------

    def checkpoint_config(self, metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """config.json for the current model (class names, mean/std, input size, train args, metrics)."""
        return ckpt.config_for(self, metrics)
