"""The training loop: Trainer and train()."""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from zoo.errors import CheckpointError, DataError, ZooError
from zoo.text import detail_line
from zoo.train.config import TrainConfig


class TrainingDivergedError(ZooError):
    """The loss became NaN or infinite."""


# -- hooks the transfer code can override --------------------------------------


def model_train_mode(model: Any) -> None:
    """Put ``model`` into training mode.

    A model with a ``zoo_train_mode()`` method decides itself (frozen
    BatchNorm layers stay in eval); others get ``model.train()``.
    """
    hook = getattr(model, "zoo_train_mode", None)
    if callable(hook):
        hook()
    else:
        model.train()


class Callback:
    """Base class for training callbacks; override the methods you need.

    Callbacks may change ``requires_grad`` (unfreeze a stage) and add
    parameter groups with :meth:`Trainer.add_param_group` in
    ``on_epoch_start``.
    """

    def on_fit_start(self, trainer: "Trainer") -> None:
        """Called once, after setup (and after a resume was loaded)."""

    def on_epoch_start(self, trainer: "Trainer", epoch: int) -> None:
        """Called before epoch ``epoch`` (1-based) trains."""

    def on_epoch_end(self, trainer: "Trainer", epoch: int, metrics: dict[str, Any]) -> None:
        """Called after validation and checkpointing of ``epoch``."""

    def on_fit_end(self, trainer: "Trainer", result: "TrainResult") -> None:
        """Called once at the end, also after early stopping or Ctrl-C."""


class _FunctionCallback(Callback):
    def __init__(self, fn: Callable[["Trainer", int], None]) -> None:
        self.fn = fn

    def on_epoch_start(self, trainer: "Trainer", epoch: int) -> None:
        self.fn(trainer, epoch)


# -- results -------------------------------------------------------------------


@dataclass
class TrainResult:
    """What a training run produced."""

    model: Any
    history: list[dict[str, Any]]
    class_names: list[str]
    mean: list[float] | None
    std: list[float] | None
    input_size: tuple[int, ...] | None
    best_epoch: int | None = None
    best_metrics: dict[str, Any] = field(default_factory=dict)
    stopped: str = "completed"  # completed | early_stop | interrupted
    out: Path | None = None
    best_path: Path | None = None
    last_path: Path | None = None
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def final(self) -> dict[str, Any]:
        """Metrics of the last epoch."""
        return self.history[-1] if self.history else {}

    @property
    def val_acc(self) -> float | None:
        """Validation accuracy of the best epoch (or the last one)."""
        row = self.best_metrics or self.final
        return row.get("val_acc")


# -- devices -------------------------------------------------------------------


def select_device(request: str | None = "auto"):
    """``auto`` picks cuda, then mps, then cpu; a named device that is not there is a ZooError."""
    import torch

    request = (request or "auto").strip().lower()
    if request == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(request)
    except RuntimeError:
        raise ZooError(f"unknown device {request!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ZooError(f"device {request!r} was requested but CUDA is not available here; use --device cpu or auto")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ZooError(f"device {request!r} does not exist: this machine has {count} CUDA device(s)")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ZooError(f"device {request!r} was requested but MPS is not available here; use --device cpu or auto")
    elif device.type != "cpu":
        raise ZooError(f"device {request!r} is not supported; use auto, cpu, cuda, cuda:N or mps")
    return device


# -- the trainer ---------------------------------------------------------------


class Trainer:
    """Train a classifier; see :mod:`zoo.train` for the full API."""

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
        **options: Any,
    ) -> None:
        import torch

        from zoo.data.dataset import ImageData

        unknown = set(options) - TrainConfig.names()
        if unknown:
            raise ZooError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        self.config = replace(config, **options) if config is not None else TrainConfig(**options)
        cfg = self.config
        if dist is None:
            from zoo.train.distributed import from_env

            dist = from_env()
        self.dist = dist
        self.skipped: dict[str, int] = {}
        if isinstance(train_data, ImageData):
            if val_data is None:
                val_data = train_data.val
            class_names = class_names or train_data.class_names
            input_size = input_size or train_data.input_size
            self.skipped = train_data.skipped
            self.data_root = str(train_data.root)
            train_data = train_data.train
        else:
            self.data_root = None
        self.train_data, self.val_data = train_data, val_data
        if class_names is None:
            labels = _labels_of(train_data)
            if labels is None:
                raise DataError("pass class_names= when training on a dataset without labels tensor")
            class_names = [str(i) for i in range(int(labels.max()) + 1)]
        self.class_names = list(class_names)
        if isinstance(model, str):
            from zoo.factory import create_model

            torch.manual_seed(cfg.seed)  # the same initial weights for the same seed
            model = create_model(model, num_classes=len(self.class_names), **dict(cfg.model_args))
        self.model = model
        arch = getattr(model, "zoo_arch", None)
        if input_size is None:
            input_size = cfg.input_size
        if input_size is None and arch:
            from zoo.plugins import get_spec

            spec = get_spec(arch["name"])
            input_size = (arch["in_chans"], *spec.input_size[1:])
        self.input_size = tuple(int(v) for v in input_size) if input_size is not None else None
        self.mean = list(mean) if mean is not None else None
        self.std = list(std) if std is not None else None
        self.param_groups = param_groups
        self.callbacks = [cb if isinstance(cb, Callback) else _FunctionCallback(cb) for cb in callbacks]
        self.extra_config = dict(extra_config or {})
        self.train_mode = train_mode or model_train_mode
        self.out = Path(cfg.out) if cfg.out else None
        self.history: list[dict[str, Any]] = []
        self.epoch = 0  # last completed epoch
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.optimizer = None
        self.scheduler = None
        self.scaler = None
        self._setup_done = False

    # -- setup -------------------------------------------------------------------

    def setup(self) -> None:
        """Choose the device, normalisation, batches, optimizer and schedule; load --resume."""
        if self._setup_done:
            return
        import torch

        from zoo.data.batches import TensorBatches, make_batches
        from zoo.data.transforms import BatchAugment, Normalize, parse_augment
        from zoo.train.optim import build_optimizer, build_scheduler, make_loss

        cfg = self.config
        if self.out is not None and not getattr(self.model, "zoo_arch", None):
            # Found out now rather than after the first epoch's work.
            raise CheckpointError(
                "checkpoints need a model built by zoo.create_model (it records the architecture);"
                " build it that way, or train without out="
            )
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if self.dist.enabled:
            n_train = _length(self.train_data)
            if n_train is not None and n_train < self.dist.world_size:
                raise DataError(
                    f"{self.dist.world_size} processes but only {n_train} training samples: every rank needs at"
                    " least one; use fewer processes (--nproc / --nproc_per_node)"
                )
        self.device = self._pick_device()
        self.dist.init(self.device)
        if self.dist.enabled:
            # Same initial weights everywhere (DDP broadcasts rank 0's anyway),
            # but each rank draws its own dropout masks.
            torch.manual_seed(cfg.seed * 1_000 + self.dist.rank)
        self.amp = cfg.amp if cfg.amp is not None else self.device.type == "cuda"
        # Channels-last convolutions are faster on CUDA, and on CPU with oneDNN
        # too (the book's net trains about 1.5x faster that way on 1-2 cores).
        self.channels_last = cfg.channels_last if cfg.channels_last is not None else self.device.type in ("cuda", "cpu")
        if self.amp and self.device.type != "cuda":
            raise ZooError("--amp needs a CUDA device")
        self.amp_dtype = torch.bfloat16 if (self.amp and torch.cuda.is_bf16_supported()) else torch.float16
        resume_state, resume_config = self._read_resume()
        if resume_config is not None:
            self.mean = self.mean or resume_config.get("mean")
            self.std = self.std or resume_config.get("std")
        self._choose_normalisation()
        self.augs = parse_augment(cfg.augment)
        self.normalize = Normalize(self.mean, self.std, BatchAugment(self.augs))
        rank, world = self.dist.rank, self.dist.world_size
        self.train_batches = make_batches(self.train_data, cfg.batch_size, train=True, seed=cfg.seed, rank=rank,
                                          world_size=world, input_size=self.input_size, augment=self.augs,
                                          workers=cfg.workers, pin_memory=self.device.type == "cuda")
        self.val_batches = None
        if self.val_data is not None:
            self.val_batches = make_batches(self.val_data, cfg.val_batch_size or 2 * cfg.batch_size, train=False,
                                            seed=cfg.seed, rank=rank, world_size=world, input_size=self.input_size,
                                            workers=cfg.workers, pin_memory=self.device.type == "cuda")
        if self.device.type == "cuda":
            # Small caches live on the GPU: batches are then cut without host copies.
            for batches in (self.train_batches, self.val_batches):
                if isinstance(batches, TensorBatches) and batches.x.numel() * batches.x.element_size() < 2**31:
                    batches.to(self.device)
        model = self.model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if resume_state is not None:
            self._load_resume_weights(resume_config)
        groups = self.param_groups(model) if callable(self.param_groups) else self.param_groups
        if groups is None:
            # Every parameter, frozen ones included: they get no gradient and the
            # optimizer skips them, so a callback can unfreeze by flipping requires_grad.
            groups = [{"params": list(model.parameters())}]
        self.optimizer = build_optimizer([dict(g) for g in groups], cfg.optimizer, lr=cfg.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay)
        self.scheduler = build_scheduler(self.optimizer, cfg.scheduler, epochs=cfg.epochs,
                                         steps_per_epoch=len(self.train_batches), step_size=cfg.step_size,
                                         milestones=cfg.milestones, gamma=cfg.gamma)
        self.scaler = torch.amp.GradScaler("cuda") if (self.amp and self.amp_dtype == torch.float16) else None
        self.loss_fn = make_loss(cfg.loss, cfg.label_smoothing)
        self.net = self._wrap(model)
        if resume_state is not None:
            self._load_resume_state(resume_state)
        self._setup_done = True

    def _pick_device(self):
        import torch

        device = select_device(self.config.device)
        if self.dist.enabled and device.type == "cuda":
            device = torch.device("cuda", self.dist.local_rank % max(1, torch.cuda.device_count()))
            torch.cuda.set_device(device)
        return device

    def _choose_normalisation(self) -> None:
        from zoo.data.dataset import ImageSplit
        from zoo.data.transforms import compute_mean_std

        if self.mean is not None and self.std is not None:
            return
        if not isinstance(self.train_data, ImageSplit):
            x = self.train_data[0] if isinstance(self.train_data, (tuple, list)) else None
            if x is not None and getattr(x, "dtype", None) is not None and str(x.dtype) == "torch.uint8" and x.ndim == 4:
                self.mean, self.std = compute_mean_std(x)  # uint8 image tensors: like a cached folder
            return  # float tensors or a Dataset arrive prepared: nothing to normalise
        if self.config.normalize == "model" or not self.train_data.cached:
            arch = getattr(self.model, "zoo_arch", None)
            if self.config.normalize == "dataset" and not self.train_data.cached:
                self.mean, self.std = _sample_mean_std(self.train_data, self.input_size)
                return
            if arch:
                from zoo.plugins import get_spec

                spec = get_spec(arch["name"])
                self.mean, self.std = list(spec.mean), list(spec.std)
                return
        self.mean, self.std = compute_mean_std(self.train_data.images)

    def _wrap(self, model: Any) -> Any:
        """The module the loop calls: the model, or its DistributedDataParallel wrapper."""
        if not self.dist.enabled:
            return model
        from zoo.train.distributed import wrap_model

        return wrap_model(model, self.device)

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
                self.net = self._wrap(self.model)

    # -- resume ------------------------------------------------------------------

    def _read_resume(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if not self.config.resume:
            return None, None
        from zoo.checkpoint import load_training_state
        from zoo.io import load_config

        path = Path(self.config.resume)
        config = load_config(path)
        arch = getattr(self.model, "zoo_arch", None) or {}
        if arch and config.get("architecture") != arch.get("name"):
            raise CheckpointError(
                f"cannot resume from {str(path)!r}: it holds a {config.get('architecture')} but this run trains"
                f" a {arch.get('name')}; pass the same architecture or drop --resume"
            )
        if int(config.get("num_classes", -1)) != len(self.class_names):
            raise CheckpointError(
                f"cannot resume from {str(path)!r}: it has {config.get('num_classes')} classes but the data has"
                f" {len(self.class_names)}; use the same data or drop --resume"
            )
        if list(config.get("class_names", [])) != self.class_names:
            raise CheckpointError(f"cannot resume from {str(path)!r}: its class names differ from the data's")
        state = load_training_state(path)
        if state is None:
            raise CheckpointError(
                f"{str(path)!r} has no training state to resume from; resume from OUT/last, not OUT/best"
            )
        return state, config

    def _load_resume_weights(self, config: Mapping[str, Any]) -> None:
        from zoo.io import load_state_dict

        state = load_state_dict(self.config.resume)
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"weights in {self.config.resume!r} do not fit this model: {detail_line(exc)}") from None

    def _load_resume_state(self, state: Mapping[str, Any]) -> None:
        import torch

        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"cannot resume the optimizer from {self.config.resume!r}: {exc}") from None
        if self.scheduler is not None and state.get("scheduler") is not None:
            steps = len(self.train_batches)
            if state.get("epochs") == self.config.epochs and state.get("steps_per_epoch") == steps:
                self.scheduler.load_state_dict(state["scheduler"])
            else:
                # A longer (or shorter) run changes the horizon of cosine/onecycle:
                # replay the new schedule up to where the old run stopped.
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    for _ in range(int(state["epoch"]) * steps):
                        self.scheduler.step()
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.history = [dict(row) for row in state.get("history", [])]
        self.best_value = state.get("best_value")
        self.best_epoch = state.get("best_epoch")
        self.bad_epochs = int(state.get("bad_epochs", 0))
        if state.get("torch_rng") is not None:
            torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") and torch.cuda.is_available():
            try:
                torch.cuda.set_rng_state_all(list(state["cuda_rng"]))
            except RuntimeError:
                pass  # another GPU count: the loop's own generators still fix the data order

    def training_state(self) -> dict[str, Any]:
        """What --resume needs besides the weights."""
        import torch

        return {
            "epoch": self.epoch,
            "epochs": self.config.epochs,
            "steps_per_epoch": len(self.train_batches),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "history": self.history,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    # -- the loop ----------------------------------------------------------------

    def fit(self) -> TrainResult:
        """Train for ``config.epochs`` epochs (from the resumed epoch on) and return the result."""
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
            stopped = self._epochs()
        except KeyboardInterrupt:
            stopped = "interrupted"
            self._say("interrupted: saving the current weights as 'last'")
            if self.history:
                self._save(self.history[-1], False, interrupted=True)
        except Exception as exc:
            from zoo.train.distributed import DistributedError, is_comm_error

            if self.dist.enabled and is_comm_error(exc) and not isinstance(exc, ZooError):
                last = f"; the last checkpoint {self.out / 'last'} is intact" if self.out is not None else ""
                raise DistributedError(
                    f"rank {self.dist.rank} lost contact with the other ranks during epoch {self.epoch + 1}"
                    f" (did one of them fail?){last}; continue with --resume"
                ) from None
            raise
        result = self._result(stopped)
        if self.out is not None and self.dist.is_main and cfg.plot and self.history:
            from zoo.train.metrics import plot_curves

            name = (getattr(self.model, "zoo_arch", None) or {}).get("name", "")
            plot_curves(self.history, self.out / "curves.png", title=name)
        for cb in self.callbacks:
            cb.on_fit_end(self, result)
        if stopped != "interrupted" and self.dist.enabled:
            # Release DDP (its reducer holds the process group) before leaving
            # the group: destroyed later, at interpreter exit, it can abort the
            # process. After Ctrl-C the ranks may stand at different
            # collectives, so no farewell there: the process just exits.
            import gc

            self.net = self.model
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
            self.epoch = epoch
            self.history.append(row)
            improved = self._track_best(row)
            self._log_epoch(row)
            self._save(row, improved)
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, row)
            if cfg.early_stop is not None and self.bad_epochs >= cfg.early_stop:
                self._say(f"early stopping: {cfg.monitor} did not improve for {cfg.early_stop} epochs")
                return "early_stop"
        return "completed"

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the training batches; returns the epoch's train metrics."""
        import torch

        cfg = self.config
        self.train_batches.set_epoch(epoch)
        self.train_mode(self.model)
        net, opt, sched, scaler = self.net, self.optimizer, self.scheduler, self.scaler
        device, normalize, loss_fn = self.device, self.normalize, self.loss_fn
        gen = torch.Generator().manual_seed(_augment_seed(cfg.seed, epoch, self.dist.rank))
        penalised = [p for p in self.model.parameters() if p.requires_grad] if (cfg.l1 or cfg.l2) else None
        clip_params = [p for p in self.model.parameters() if p.requires_grad] if cfg.clip_grad else None
        non_blocking = device.type == "cuda"
        # Per-step checks would let ranks stop at different steps; in DDP the
        # all-reduced epoch sums are checked instead, by every rank alike.
        check_every = 0 if self.dist.enabled else (1 if device.type == "cpu" else 25)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        bar = self._bar(len(self.train_batches), f"epoch {epoch}/{cfg.epochs}")
        start = time.perf_counter()
        last_post = start
        from zoo.train.optim import penalty

        autocast = torch.autocast(device.type, dtype=self.amp_dtype, enabled=self.amp)
        for step, (x, y) in enumerate(self.train_batches, 1):
            x = normalize(x.to(device, non_blocking=non_blocking), train=True, generator=gen)
            y = y.to(device, non_blocking=non_blocking)
            if self.channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast:
                out = net(x)
                loss = loss_fn(out, y)
            if penalised:
                loss = loss + penalty(penalised, l2=cfg.l2, l1=cfg.l1)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                if clip_params:
                    scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(clip_params, cfg.clip_grad)
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                if clip_params:
                    torch.nn.utils.clip_grad_norm_(clip_params, cfg.clip_grad)
                opt.step()
            if sched is not None:
                sched.step()
            n = y.shape[0]
            seen += n
            loss_sum.add_(loss.detach(), alpha=n)
            correct += (out.detach().argmax(1) == y).sum()
            if check_every and step % check_every == 0 and not math.isfinite(float(loss_sum)):
                self._diverged(epoch, step)
            if bar is not None:
                bar.update(1)
                now = time.perf_counter()
                if now - last_post > 0.5:
                    last_post = now
                    bar.set_postfix(loss=f"{float(loss_sum) / seen:.4f}", acc=f"{float(correct) / seen:.3f}",
                                    img_s=f"{seen / (now - start):,.0f}", refresh=False)
        elapsed = time.perf_counter() - start
        if bar is not None:
            bar.close()
        totals = torch.stack([loss_sum, correct.to(torch.float64), torch.tensor(float(seen), dtype=torch.float64,
                                                                                 device=device)])
        self.dist.all_reduce_sum(totals)
        total_loss, total_correct, total_seen = (float(v) for v in totals.cpu())
        if not math.isfinite(total_loss):
            self._diverged(epoch, len(self.train_batches))
        skipped = getattr(self.train_batches, "skipped", None)
        row: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": total_loss / max(1.0, total_seen),
            "train_acc": total_correct / max(1.0, total_seen),
            "images_per_s": total_seen / elapsed if elapsed > 0 else 0.0,
            "epoch_time": elapsed,
        }
        if skipped:
            row["skipped_images"] = sum(skipped.values())
        return row

    def validate(self, batches: Any = None) -> dict[str, float]:
        """Loss and accuracy on the validation batches (summed over ranks)."""
        import torch

        batches = batches or self.val_batches
        model = self.model
        model.eval()  # the next epoch's train_mode() switches back
        device = self.device
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = torch.zeros((), dtype=torch.float64, device=device)
        batches.set_epoch(0)
        with torch.inference_mode(), torch.autocast(device.type, dtype=self.amp_dtype, enabled=self.amp):
            for x, y in batches:
                x = self.normalize(x.to(device, non_blocking=True), train=False)
                y = y.to(device, non_blocking=True)
                if self.channels_last and x.ndim == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                out = model(x).float()
                loss_sum += self.loss_fn(out, y).double() * y.shape[0]
                correct += (out.argmax(1) == y).sum()
                seen += y.shape[0]
        totals = torch.stack([loss_sum, correct.double(), seen])
        # Validation shards are not padded: each sample counts once over all ranks.
        self.dist.all_reduce_sum(totals)
        loss, corr, n = (float(v) for v in totals.cpu())
        return {"val_loss": loss / max(1.0, n), "val_acc": corr / max(1.0, n)}

    def _diverged(self, epoch: int, step: int) -> None:
        kept = ""
        if self.out is not None and (self.out / "last").exists():
            kept = f"; the last good checkpoint (epoch {self.epoch}) is kept in {self.out / 'last'}"
        elif self.out is not None:
            kept = "; no checkpoint was written yet"
        raise TrainingDivergedError(
            f"loss became NaN/inf at epoch {epoch}, step {step}: lower --lr, add --clip-grad or check the data{kept}"
        )

    def _track_best(self, row: dict[str, Any]) -> bool:
        monitor = self.config.monitor
        if monitor not in row:
            monitor = monitor.replace("val_", "train_")
        value = row[monitor]
        better = self.best_value is None or (value < self.best_value if monitor.endswith("loss") else value > self.best_value)
        if better:
            self.best_value, self.best_epoch, self.bad_epochs = float(value), row["epoch"], 0
        else:
            self.bad_epochs += 1
        return better

    # -- output ------------------------------------------------------------------

    def checkpoint_config(self, metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """config.json for the current model (class names, mean/std, input size, train args, metrics)."""
        from zoo.checkpoint import make_config
        from zoo.data.transforms import format_augment

        train_args = self.config.to_dict()
        train_args["augment"] = format_augment(self.augs)
        if self.data_root:
            train_args["data"] = self.data_root
        train_args["world_size"] = self.dist.world_size
        return make_config(self.model, class_names=self.class_names, mean=self.mean, std=self.std,
                           input_size=self.input_size, train_args=train_args, metrics=dict(metrics or {}),
                           **self.extra_config)

    def _save(self, row: dict[str, Any], improved: bool, interrupted: bool = False) -> None:
        if self.out is None or not self.dist.is_main:
            return
        from zoo.checkpoint import save_checkpoint
        from zoo.train.metrics import write_history

        metrics = dict(row)
        if self.best_epoch is not None:
            metrics["best_epoch"] = self.best_epoch
        if interrupted:
            metrics["interrupted"] = True
        config = self.checkpoint_config(metrics)
        try:
            if improved:
                save_checkpoint(self.out / "best", self.model, config)
            save_checkpoint(self.out / "last", self.model, config, training_state=self.training_state())
            if self.config.metrics_format != "none":
                write_history(self.out, self.history, self.config.metrics_format)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise CheckpointError(
                f"could not write the checkpoint under {str(self.out)!r}: {reason}; free some space or pick"
                " another --out (the previous checkpoint is intact)"
            ) from None

    def _bar(self, total: int, desc: str):
        if not (self.config.progress and self.dist.is_main):
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, unit="batch", mininterval=0.5,
                    dynamic_ncols=True)

    def _say(self, text: str) -> None:
        if self.config.progress and self.dist.is_main:
            print(text, file=sys.stderr, flush=True)

    def _log_epoch(self, row: dict[str, Any]) -> None:
        parts = [f"epoch {row['epoch']}/{self.config.epochs}",
                 f"train loss {row['train_loss']:.4f} acc {100 * row['train_acc']:.1f}%"]
        if "val_loss" in row:
            parts.append(f"val loss {row['val_loss']:.4f} acc {100 * row['val_acc']:.1f}%")
        parts.append(f"{row['images_per_s']:,.0f} img/s {row['epoch_time']:.1f}s")
        self._say("  ".join(parts))

    def _result(self, stopped: str) -> TrainResult:
        best = next((r for r in self.history if r["epoch"] == self.best_epoch), {})
        out = self.out
        return TrainResult(
            model=self.model, history=list(self.history), class_names=self.class_names, mean=self.mean,
            std=self.std, input_size=self.input_size, best_epoch=self.best_epoch, best_metrics=dict(best),
            stopped=stopped, out=out,
            best_path=out / "best" if out is not None and (out / "best").exists() else None,
            last_path=out / "last" if out is not None and (out / "last").exists() else None,
            skipped=self.skipped | getattr(self.train_batches, "skipped", {}) | getattr(self.val_batches, "skipped", {}),
        )


def _augment_seed(seed: int, epoch: int, rank: int) -> int:
    return (int(seed) * 2_654_435_761 + int(epoch) * 40_503 + int(rank) * 97 + 1) % (2**63 - 1)


def _length(data: Any) -> int | None:
    if isinstance(data, (tuple, list)) and len(data) == 2 and hasattr(data[1], "shape"):
        return int(data[1].shape[0])  # (inputs, labels)
    return len(data) if hasattr(data, "__len__") else None


def _labels_of(data: Any):
    import torch
    from torch.utils.data import TensorDataset

    from zoo.data.dataset import ImageSplit

    if isinstance(data, ImageSplit):
        return data.labels
    if isinstance(data, TensorDataset) and len(data.tensors) == 2:
        return data.tensors[1]
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[1], torch.Tensor):
        return data[1]
    return None


def _sample_mean_std(split: Any, input_size: Sequence[int] | None, limit: int = 2000):
    """Mean/std from up to ``limit`` evenly spaced training images (for data too large to cache)."""
    from zoo.data.decode import decode_many
    from zoo.data.transforms import compute_mean_std

    if input_size is None:
        raise DataError("the model's input size is unknown; pass input_size")
    step = max(1, len(split.paths) // limit)
    images, _, _ = decode_many(split.paths[::step][:limit], int(input_size[0]), (int(input_size[1]), int(input_size[2])))
    if len(images) == 0:
        raise DataError("none of the sampled training images could be read")
    return compute_mean_std(images)


# -- the one-call API ----------------------------------------------------------


def train(
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
    trainer_keys = {"class_names", "input_size", "mean", "std", "param_groups", "callbacks", "extra_config",
                    "train_mode", "dist"}
    trainer_kwargs = {k: options.pop(k) for k in list(options) if k in trainer_keys}
    if out is not None:
        options["out"] = str(out)
    cfg = replace(config, **options) if config is not None else TrainConfig(**options)
    if isinstance(data, (str, os.PathLike)):
        data = load_folder_for(model, data, cfg, input_size=trainer_kwargs.get("input_size"))
    return Trainer(model, data, val_data, cfg, **trainer_kwargs).fit()


def load_folder_for(model: Any, data: str | os.PathLike, cfg: TrainConfig, input_size: Sequence[int] | None = None):
    """Decode the image folder ``data`` at the input size ``model`` (a name or a built model) expects."""
    from zoo.data.dataset import load_image_data
    from zoo.plugins import get_spec

    size = input_size or cfg.input_size
    if size is None:
        name = model if isinstance(model, str) else (getattr(model, "zoo_arch", None) or {}).get("name")
        if name is None:
            raise DataError("the model's input size is unknown; pass input_size=(C, H, W)")
        spec = get_spec(name)
        in_chans = cfg.model_args.get("in_chans", spec.in_chans) if isinstance(model, str) else model.zoo_arch["in_chans"]
        size = (in_chans, *spec.input_size[1:])
    return load_image_data(data, size, val_split=cfg.val_split, seed=cfg.seed, cache=cfg.cache,
                           cache_budget_mb=cfg.cache_mb, verbose=cfg.progress)
