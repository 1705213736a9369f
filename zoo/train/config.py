"""TrainConfig: every training option in one record (saved into checkpoints as ``train_args``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from zoo.errors import ZooError


# The experiment trackers --logger names (zoo.train.loggers builds them).
LOGGERS = ("tensorboard", "mlflow")


@dataclass
class TrainConfig:
    """Options of a training run; ``zoo train`` fills it from the command line."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-2
    optimizer: str = "sgd"  # sgd | adam | adamw
    momentum: float = 0.9  # sgd only; 0 gives the book's plain SGD
    weight_decay: float = 0.0
    l2: float = 0.0  # explicit penalty: loss + l2 * sum(p ** 2), as the lecture writes it
    l1: float = 0.0  # explicit penalty: loss + l1 * sum(|p|)
    loss: str = "ce"  # ce | nll | mse
    label_smoothing: float = 0.0
    scheduler: str = "none"  # none | step | multistep | cosine | onecycle
    step_size: int = 10  # epochs, for step
    milestones: tuple[int, ...] = ()  # epochs, for multistep
    gamma: float = 0.1
    clip_grad: float | None = None  # max gradient norm
    early_stop: int | None = None  # patience in epochs without improvement of `monitor`
    monitor: str = "val_acc"  # val_acc | val_loss | train_acc | train_loss
    device: str = "auto"
    amp: bool | None = None  # None: on for CUDA
    channels_last: bool | None = None  # None: on for CUDA and CPU (faster convolutions), off for MPS
    seed: int = 0
    augment: str = "none"  # e.g. "crop=4,flip" or "default"; training split only
    normalize: str = "dataset"  # dataset (mean/std of the training images) | model (the spec's / weights' own)
    val_split: float = 0.1  # used when the folder has no train/ and val/ (or the table no validation column)
    path_col: str | None = None  # a table's image path column [path, file, filename, ...]
    label_col: str | None = None  # a table's label column [label, labels, tags, class, ...]
    valid_col: str | None = None  # a table's validation-row column [is_valid]
    multi_label: bool = False  # several labels per table row, split by label_delim; sigmoid/BCE training
    label_delim: str = " "
    cache: bool | str = "auto"  # decode into memory when it fits cache_mb
    cache_mb: float = 1024
    workers: int | None = None  # DataLoader workers when streaming
    threads: int | None = None  # torch CPU threads (None: torch's default)
    val_batch_size: int | None = None  # default: 2 x batch_size, fewer when the memory budget says so
    memory_mb: float = 512  # activations of one inference batch (validation, feature pass); zoo.data.budget
    metrics_format: str = "jsonl"  # jsonl | csv | both | none
    loggers: tuple[str, ...] = ()  # experiment trackers: tensorboard, mlflow (zoo.train.loggers)
    tracking_uri: str | None = None  # MLflow's store [./mlruns]
    plot: bool = True
    progress: bool = True
    out: str | None = None
    resume: str | None = None  # a checkpoint directory (usually OUT/last)
    overwrite: bool = False  # an out that holds a run is refused; True moves that run aside first (zoo.io)
    model_args: dict[str, Any] = field(default_factory=dict)
    input_size: tuple[int, int, int] | None = None
    accumulate: int = 1  # batches whose gradients are summed before one optimizer step
    ema: float | None = None  # decay of an exponential moving average of the weights (e.g. 0.999)
    mixup: float = 0.0  # MixUp's Beta alpha (0: off)
    cutmix: float = 0.0  # CutMix's Beta alpha (0: off)
    lr_find: bool = False  # run the LR range test first and train at its suggestion (--lr auto)

    def __post_init__(self) -> None:
        from zoo.train.metrics import METRICS_FORMATS
        from zoo.train.optim import LOSSES, OPTIMIZERS, SCHEDULERS

        self.optimizer = self.optimizer.lower()
        self.loss = self.loss.lower()
        self.scheduler = (self.scheduler or "none").lower()
        checks = [
            (self.optimizer in OPTIMIZERS, f"unknown optimizer {self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}"),
            (self.loss in LOSSES, f"unknown loss {self.loss!r}; choose from {', '.join(LOSSES)}"),
            (self.scheduler in SCHEDULERS, f"unknown scheduler {self.scheduler!r}; choose from {', '.join(SCHEDULERS)}"),
            (self.metrics_format in METRICS_FORMATS, f"--metrics-format must be one of {', '.join(METRICS_FORMATS)}"),
            (self.monitor in ("val_acc", "val_loss", "train_acc", "train_loss"),
             "--monitor must be val_acc, val_loss, train_acc or train_loss"),
            (self.normalize in ("dataset", "model"), "--normalize must be 'dataset' or 'model'"),
            (isinstance(self.epochs, int) and self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (isinstance(self.batch_size, int) and self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.lr > 0, f"--lr must be positive, got {self.lr}"),
            (isinstance(self.accumulate, int) and self.accumulate >= 1,
             f"--accumulate must be a whole number of at least 1, got {self.accumulate}"),
            (self.ema is None or 0.0 < self.ema < 1.0, f"--ema must lie between 0 and 1 (e.g. 0.999), got {self.ema}"),
            (self.mixup >= 0 and self.cutmix >= 0, "--mixup and --cutmix take an alpha of 0 (off) or more"),
            (self.l1 >= 0 and self.l2 >= 0 and self.weight_decay >= 0, "penalties and weight decay must not be negative"),
        ]
        for ok, message in checks:
            if not ok:
                raise ZooError(message)
        self.milestones = tuple(int(m) for m in self.milestones)
        self.loggers = tuple(str(v).lower() for v in self.loggers)
        unknown = [v for v in self.loggers if v not in LOGGERS]
        if unknown:
            raise ZooError(f"unknown --logger {unknown[0]!r}; choose from {', '.join(LOGGERS)}")
        if self.input_size is not None:
            self.input_size = tuple(int(v) for v in self.input_size)  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly, for config.json's ``train_args``."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def names(cls) -> set[str]:
        """The option names (to tell them from other keyword arguments)."""
        return {f.name for f in fields(cls)}
