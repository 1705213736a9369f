"""Training callbacks, and the one that reports progress.

Progress bars are drawn only when stderr is a terminal; on a pipe, in CI or
in a log file each epoch prints one line instead, so ``zoo train ... 2>&1 |
cat`` never fills up with carriage returns.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, Callable, TextIO

if TYPE_CHECKING:
    from zoo.train.trainer import Trainer, TrainResult


class Callback:
    """Base class for training callbacks; override the methods you need.

    Callbacks may change ``requires_grad`` (unfreeze a stage) and add
    parameter groups with :meth:`Trainer.add_param_group` in
    ``on_epoch_start``. ``trainer.request_stop()`` ends the run at the next
    step boundary, as Ctrl-C does (the state saved then resumes exactly).
    """

    def on_fit_start(self, trainer: "Trainer") -> None:
        """Called once, after setup (and after a resume was loaded)."""

    def on_epoch_start(self, trainer: "Trainer", epoch: int) -> None:
        """Called before epoch ``epoch`` (1-based) trains."""

    def on_batch_end(self, trainer: "Trainer", epoch: int, step: int, stats: "RunningStats") -> None:
        """Called after each optimizer step; ``stats`` are the epoch's running sums."""

    def on_epoch_end(self, trainer: "Trainer", epoch: int, metrics: dict[str, Any]) -> None:
        """Called after validation and checkpointing of ``epoch``."""

    def on_fit_end(self, trainer: "Trainer", result: "TrainResult") -> None:
        """Called once at the end, also after early stopping or Ctrl-C."""


class FunctionCallback(Callback):
    """A plain function ``f(trainer, epoch)`` run at each epoch start."""

    def __init__(self, fn: Callable[["Trainer", int], None]) -> None:
        self.fn = fn

    def on_epoch_start(self, trainer: "Trainer", epoch: int) -> None:
        self.fn(trainer, epoch)


class RunningStats:
    """An epoch's sums so far, kept on the device (read them sparingly: each read syncs)."""

    def __init__(self, device: Any, loss_sum: float = 0.0, correct: int = 0, seen: int = 0) -> None:
        import torch

        self.loss_sum = torch.tensor(float(loss_sum), dtype=torch.float64, device=device)
        self.correct = torch.tensor(int(correct), dtype=torch.long, device=device)
        self.seen = int(seen)
        self.started = time.perf_counter()
        self.start_seen = self.seen

    def add(self, loss: Any, correct: Any, n: int) -> None:
        self.loss_sum.add_(loss.detach(), alpha=n)
        if correct is not None:
            self.correct += correct
        self.seen += n

    def state(self) -> dict[str, Any]:
        """Plain numbers, for a mid-epoch checkpoint."""
        return {"loss_sum": float(self.loss_sum), "correct": int(self.correct), "seen": self.seen}

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.started
        return (self.seen - self.start_seen) / elapsed if elapsed > 0 else 0.0


class ProgressReporter(Callback):
    """Bars on a terminal, one line per epoch everywhere, and the run's notices."""

    def __init__(self, stream: TextIO | None = None, bars: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.bars = _is_terminal(self.stream) if bars is None else bars
        self.bar = None
        self.last_post = 0.0

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def on_epoch_start(self, trainer: "Trainer", epoch: int) -> None:
        if not self.bars:
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=len(trainer.train_batches), initial=trainer.start_step(epoch),
                        desc=f"epoch {epoch}/{trainer.config.epochs}", file=self.stream, leave=False,
                        unit="batch", mininterval=0.5, dynamic_ncols=True)

    def on_batch_end(self, trainer: "Trainer", epoch: int, step: int, stats: RunningStats) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        now = time.perf_counter()
        if now - self.last_post > 0.5 and stats.seen:
            self.last_post = now
            post = {"loss": f"{float(stats.loss_sum) / stats.seen:.4f}"}
            if trainer.task.has_accuracy:
                post["acc"] = f"{float(stats.correct) / stats.seen:.3f}"
            post["img_s"] = f"{stats.rate():,.0f}"
            self.bar.set_postfix(post, refresh=False)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_epoch_end(self, trainer: "Trainer", epoch: int, metrics: dict[str, Any]) -> None:
        self.close_bar()
        self.say(epoch_line(metrics, trainer.config.epochs))

    def on_fit_end(self, trainer: "Trainer", result: "TrainResult") -> None:
        self.close_bar()


def epoch_line(row: dict[str, Any], epochs: int) -> str:
    """``epoch 3/10  train loss 0.41 acc 84.0%  val loss ...  1,234 img/s 5.1s  ~36s left``."""
    parts = [f"epoch {row['epoch']}/{epochs}"]
    for split in ("train", "val"):
        if f"{split}_loss" not in row:
            continue
        text = f"{split} loss {row[f'{split}_loss']:.4f}"
        if f"{split}_acc" in row:
            text += f" acc {100 * row[f'{split}_acc']:.1f}%"
        parts.append(text)
    parts.append(f"{row['images_per_s']:,.0f} img/s {row['epoch_time']:.1f}s")
    if row["epoch"] < epochs:  # the epochs to come, at this one's pace
        parts.append(f"~{(epochs - row['epoch']) * row['epoch_time']:.0f}s left")
    return "  ".join(parts)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
