"""The training loop: one Trainer for every task, built from parts.

* :mod:`zoo.train.state`: the run's state, one :class:`RunState` record;
* :mod:`zoo.train.tasks`: what a batch's loss and metrics are (classification, reconstruction);
* :mod:`zoo.train.epoch`: the steps of an epoch, with the callbacks' batch events;
* :mod:`zoo.train.checkpointer`: writes ``best/`` and ``last/`` with what it is given, reads ``--resume``;
* :mod:`zoo.train.callbacks`: the events, progress, and the hooks callers add;
* :mod:`zoo.train.extras`: the callbacks behind ``--accumulate``, ``--ema``, ``--mixup``/``--cutmix``;
* :mod:`zoo.train.prepare`: splits, labels, input size and mean/std from what the caller passed.

The Trainer itself places things on the device, builds batches, the
optimizer and the schedule, and runs the epochs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from zoo.errors import ZooError
from zoo.registry import model_info
from zoo.train import checkpointer as ckpt
from zoo.train import epoch as epoch_steps
from zoo.train import extras, saving
from zoo.train.callbacks import Callback, Callbacks, FunctionCallback, ProgressReporter
from zoo.train.config import TrainConfig
from zoo.train.epoch import TrainingDivergedError, _StopRequested, stop_on_ctrl_c
from zoo.train.prepare import default_input_size, unpack_data
from zoo.train.result import TrainResult, model_train_mode
from zoo.train.scope import ProcessState
from zoo.train.setup import seed_run, setup_run
from zoo.train.state import RunState, resolve_monitor
from zoo.train.tasks import ClassificationTask, MultiLabelTask, Task

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

        unknown = set(options) - TrainConfig.names()
        if unknown:
            raise ZooError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        self.config = cfg = replace(config, **options) if config is not None else TrainConfig(**options)
        if dist is None:
            from zoo.train.distributed import from_env

            dist = from_env()
        self.dist = dist
        multi = cfg.multi_label or bool(getattr(train_data, "multi_label", False))
        self.task = task or (MultiLabelTask(label_smoothing=cfg.label_smoothing) if multi
                             else ClassificationTask(cfg.loss, cfg.label_smoothing))
        data = unpack_data(train_data, val_data, class_names, input_size)
        self.train_data, self.val_data, self.class_names, input_size, self.skipped, self.data_root = data
        if isinstance(model, str):
            from zoo.factory import create_model

            with torch.random.fork_rng(devices=[]):  # the caller's global generator is left alone
                torch.manual_seed(cfg.seed)  # the same initial weights for the same seed
                model = create_model(model, num_classes=len(self.class_names), **dict(cfg.model_args))
        self.model = model
        # The part the loop runs: the whole model, or only its classifier on cached features.
        self.forward_module = forward_module if forward_module is not None else model
        self.input_size = default_input_size(model, input_size if input_size is not None else cfg.input_size)
        self.mean = list(mean) if mean is not None else None
        self.std = list(std) if std is not None else None
        self.param_groups = param_groups
        # The options' own callbacks (mixup, accumulation, EMA) run first, the caller's after them.
        self.callbacks = extras.from_config(cfg, self.task, len(self.class_names))
        self.callbacks += [cb if isinstance(cb, Callback) else FunctionCallback(cb) for cb in callbacks]
        if cfg.loggers and dist.is_main:  # experiment trackers (zoo.train.loggers), beside the run's files
            from zoo.train.loggers import make_loggers

            self.callbacks.extend(make_loggers(cfg.loggers, cfg.out, cfg.tracking_uri))
        self.reporter = ProgressReporter() if (cfg.progress and dist.is_main) else None
        if self.reporter is not None:
            self.callbacks.insert(0, self.reporter)
        self.extra_config = dict(extra_config or {})
        self.train_mode = train_mode or model_train_mode
        self.out = Path(cfg.out) if cfg.out else None
        self.checkpointer = ckpt.Checkpointer(self.out, enabled=dist.is_main, metrics_format=cfg.metrics_format)
        self.state = RunState()
        self.hooks = Callbacks(self.callbacks)
        self.weight_variants: dict[str, Any] = {}  # other weights best/ may hold (name -> module like forward_module)
        self.optimizer = self.scheduler = self.scaler = None
        self._process: ProcessState | None = None  # threads and RNGs before setup, restored by close()
        self._resume: dict[str, Any] | None = None
        self._setup_done = False

    # -- setup -------------------------------------------------------------------

    def setup(self) -> None:
        """Choose the device, normalisation, batches, optimizer and schedule; load --resume; run --lr auto."""
        if self._setup_done:
            return
        self._process = self._process or ProcessState()
        try:
            setup_run(self)
        except BaseException:
            self.close()
            raise
        self._setup_done = True

    def set_lr(self, lr: float) -> None:
        """Train at ``lr``: every parameter group scaled by the same factor (discriminative ratios kept)."""
        factor = float(lr) / self.config.lr
        for group in self.optimizer.param_groups:
            group["lr"] *= factor
        self.config = replace(self.config, lr=float(lr))

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
        self.state.stop_requested = True

    def say(self, text: str) -> None:
        if self.reporter is not None:
            self.reporter.say(text)

    # The run's progress lives in self.state; these read it, for callers of the earlier API.
    history = property(lambda self: self.state.history, doc="Metrics of each completed epoch.")
    epoch = property(lambda self: self.state.epoch, doc="The last completed epoch (0 before the first).")
    best_epoch = property(lambda self: self.state.best_epoch, doc="The epoch of best/.")

    # -- the loop ----------------------------------------------------------------

    def fit(self) -> TrainResult:
        """Train for ``config.epochs`` epochs (from the resumed position on) and return the result.

        Threads and the global random generators are as they were when it returns (or raises).
        """
        try:
            self.setup()
            return self._fit()
        finally:
            self.close()

    def close(self) -> None:
        """Put back what setup changed in the process (torch's thread count, the global RNGs)."""
        if self._process is not None:
            self._process.restore()
            self._process = None

    def _fit(self) -> TrainResult:
        cfg = self.config
        seed_run(self)
        self.hooks = Callbacks(self.callbacks)
        self.hooks.call("on_fit_start", self)
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
            self._failed(exc)
            raise
        result = TrainResult.from_trainer(self, stopped)
        if self.out is not None and self.dist.is_main and cfg.plot and self.history:
            from zoo.train.metrics import plot_curves

            info = model_info(self.model)
            plot_curves(self.history, self.out / "curves.png", title=info.name if info else "")
        self.hooks.call("on_fit_end", self, result)
        if stopped != "interrupted" and self.dist.enabled:
            # Release DDP (its reducer holds the process group) before leaving the
            # group; after Ctrl-C the ranks may stand at different collectives, so
            # no farewell there: the process just exits.
            from zoo.train.distributed import release_group

            self.net = self.forward_module
            release_group(self.dist)
        return result

    def _failed(self, exc: Exception) -> None:
        """The error path: on_exception and on_fit_end still run (the progress bar closes); the error is kept."""
        from zoo.text import describe
        from zoo.train.distributed import raise_lost_rank

        errors = self.hooks.call_all("on_exception", self, exc)
        errors += self.hooks.call_all("on_fit_end", self, TrainResult.from_trainer(self, "failed"))
        for error in errors:
            exc.add_note(f"a callback also failed while the run was ending: {describe(error)}")
        raise_lost_rank(self, exc)

    def _epochs(self) -> str:
        """Run the remaining epochs; returns why they ended."""
        cfg, state = self.config, self.state
        for epoch in range(state.epoch + 1, cfg.epochs + 1):
            self.hooks.call("on_epoch_start", self, epoch)
            self._refresh_wrapper()
            row = self.train_epoch(epoch)
            if self.val_batches is not None:
                row.update(self.validate())
            self.hooks.call("on_validation_end", self, epoch, row)
            row["lr"] = self.optimizer.param_groups[0]["lr"]
            improved, variant = state.track(row, resolve_monitor(cfg.monitor, row, self.task.monitor),
                                            self.weight_variants)
            state.finish_epoch(row)
            self.save_checkpoint(row, improved, variant)
            self.hooks.call("on_epoch_end", self, epoch, row)
            if state.stop_requested:
                self.say(f"interrupted after epoch {epoch}: its checkpoint is saved")
                return "interrupted"
            if cfg.early_stop is not None and state.bad_epochs >= cfg.early_stop:
                self.say(f"early stopping: {cfg.monitor} did not improve for {cfg.early_stop} epochs")
                return "early_stop"
        return "completed"

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the training batches; returns the epoch's train metrics."""
        return epoch_steps.train_epoch(self, epoch)

    def validate(self, batches: Any = None, module: Any = None) -> dict[str, float]:
        """Loss (and accuracy) of ``module`` (default: the one trained) on the validation batches, over all ranks."""
        return epoch_steps.validate(self, batches, module)

    # -- output ------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """What --resume needs besides the weights: the run state, optimizer, scaler, callbacks and RNGs."""
        return saving.training_state(self)

    def save_checkpoint(self, row: Mapping[str, Any] | None, improved: bool, variant: str = "",
                        position: Mapping[str, Any] | None = None) -> None:
        """``last/`` (with ``position`` after a stop mid-epoch), and ``best/`` when ``improved``, from ``variant``'s weights."""
        saving.save_run(self, row, improved, variant, position)

    def checkpoint_config(self, metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """config.json for the current model (class names, mean/std, input size, train args, metrics)."""
        return ckpt.config_for(self, metrics)
