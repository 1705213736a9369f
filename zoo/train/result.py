"""What a training run returns, and the default way a model enters training mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoo.train.trainer import Trainer


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
    stopped: str = "completed"  # completed | early_stop | interrupted | failed (on_fit_end after an error)
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

    @classmethod
    def from_trainer(cls, trainer: "Trainer", stopped: str) -> "TrainResult":
        """The result of ``trainer``'s run, which ended because of ``stopped``."""
        state, out = trainer.state, trainer.out
        return cls(
            model=trainer.model, history=list(state.history), class_names=trainer.class_names, mean=trainer.mean,
            std=trainer.std, input_size=trainer.input_size, best_epoch=state.best_epoch, best_metrics=state.best_row(),
            stopped=stopped, out=out,
            best_path=out / "best" if out is not None and (out / "best").exists() else None,
            last_path=out / "last" if out is not None and (out / "last").exists() else None,
            skipped=trainer.skipped | getattr(trainer.train_batches, "skipped", {}) | getattr(trainer.val_batches, "skipped", {}),
        )


