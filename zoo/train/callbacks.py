"""Training callbacks, and the one that reports progress.

Progress bars are drawn only when stderr is a terminal; on a pipe, in CI or
in a log file each epoch prints one line instead, so ``zoo train ... 2>&1 |
cat`` never fills up with carriage returns.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, TextIO

if TYPE_CHECKING:
    from zoo.train.trainer import Trainer, TrainResult


class Callback:
    """Base class for training callbacks; override the events you need.

    The events, in the order a run meets them (epochs and steps are 1-based)::

        on_fit_start
          on_epoch_start                          each epoch
            before_batch -> after_loss
              [-> before_optimizer_step -> after_optimizer_step]   when the optimizer steps
            -> on_batch_end                       each batch
          on_validation_end -> on_epoch_end       each epoch
        on_exception                              only when the run fails
        on_fit_end                                always, also after Ctrl-C, early stopping or an error

    The batch events get a :class:`Batch`, whose fields a callback may replace
    (inputs and targets in ``before_batch``, ``loss`` in ``after_loss``, the
    ``zero_grad`` / ``optimizer_step`` flags). ``trainer.state`` is the run's
    :class:`zoo.train.state.RunState`. A callback that carries state returns it
    from :meth:`state_dict` (tensors and plain values): it is saved in
    ``last/`` and handed back to :meth:`load_state_dict` on ``--resume``,
    before ``on_fit_start``.

    Callbacks may change ``requires_grad`` (unfreeze a stage) and add
    parameter groups with :meth:`Trainer.add_param_group` in
    ``on_epoch_start``. ``trainer.request_stop()`` ends the run at the next
    step boundary, as Ctrl-C does (the state saved then resumes exactly).
    """

    def on_fit_start(self, trainer: "Trainer") -> None:
        """Called once, after setup (and after a resume was loaded)."""

    def on_epoch_start(self, trainer: "Trainer", epoch: int) -> None:
        """Called before epoch ``epoch`` (1-based) trains, before the model is put into train mode."""

    def before_batch(self, trainer: "Trainer", batch: "Batch") -> None:
        """Called with a normalised, augmented batch on the device, before the forward pass."""

    def after_loss(self, trainer: "Trainer", batch: "Batch") -> None:
        """Called after the loss, before ``backward``; ``batch.loss`` is what backward will run on."""

    def before_optimizer_step(self, trainer: "Trainer", batch: "Batch") -> None:
        """Called when the gradients are final (unscaled under AMP when clipping), before the step."""

    def after_optimizer_step(self, trainer: "Trainer", batch: "Batch") -> None:
        """Called after the optimizer stepped (not on batches that only accumulate gradients)."""

    def on_batch_end(self, trainer: "Trainer", epoch: int, step: int, stats: "RunningStats") -> None:
        """Called after each batch (and the schedule's step); ``stats`` are the epoch's running sums."""

    def on_validation_end(self, trainer: "Trainer", epoch: int, metrics: dict[str, Any]) -> None:
        """Called after validation, before the checkpoint; a callback may add metrics (``ema_val_acc``)."""

    def on_epoch_end(self, trainer: "Trainer", epoch: int, metrics: dict[str, Any]) -> None:
        """Called after validation and checkpointing of ``epoch``."""

    def on_exception(self, trainer: "Trainer", error: BaseException) -> None:
        """Called when the run fails with ``error`` (it is raised again afterwards)."""

    def on_fit_end(self, trainer: "Trainer", result: "TrainResult") -> None:
        """Called once at the end, also after early stopping, Ctrl-C or an error (``result.stopped == "failed"``)."""

    def state_dict(self) -> dict[str, Any]:
        """What resume needs to continue this callback ({}: nothing)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from what :meth:`state_dict` returned in the checkpoint."""


EVENTS = ("on_fit_start", "on_epoch_start", "before_batch", "after_loss", "before_optimizer_step",
          "after_optimizer_step", "on_batch_end", "on_validation_end", "on_epoch_end", "on_exception", "on_fit_end")


@dataclass
class Batch:
    """One training step as the batch events see it; callbacks may replace fields.

    ``target`` is what the loss compares with (mixup makes it soft);
    ``labels`` stays the batch's own target, for accuracy. ``zero_grad``
    clears the gradients before this batch's backward, ``optimizer_step``
    steps the optimizer after it (gradient accumulation turns both off on
    most batches).
    """

    epoch: int
    step: int  # within the epoch, 1-based
    steps: int  # batches in the epoch
    x: Any
    target: Any
    labels: Any
    generator: Any = None  # the epoch's augmentation generator (CPU), for reproducible draws
    out: Any = None
    loss: Any = None
    zero_grad: bool = True
    optimizer_step: bool = True


class Callbacks:
    """The trainer's callbacks, called event by event in their order."""

    def __init__(self, callbacks: Iterable[Callback]) -> None:
        self.items = list(callbacks)
        # Per event, only the callbacks that override it: the batch events run every step.
        self.by_event = {e: [cb for cb in self.items if getattr(type(cb), e, None) is not getattr(Callback, e)]
                         for e in EVENTS}

    def call(self, event: str, *args: Any) -> None:
        for cb in self.by_event[event]:
            getattr(cb, event)(*args)

    def call_all(self, event: str, *args: Any) -> list[BaseException]:
        """Every callback's ``event``, even when one fails; returns what they raised (on the error path)."""
        errors = []
        for cb in self.by_event[event]:
            try:
                getattr(cb, event)(*args)
            except Exception as exc:  # noqa: BLE001 - the run's own error is the one to report
                errors.append(exc)
        return errors

    def state_dict(self) -> dict[str, Any]:
        """The states of the callbacks that have one, keyed by :func:`state_keys`."""
        out = {}
        for key, cb in zip(state_keys(self.items), self.items):
            state = cb.state_dict()
            if state:
                out[key] = state
        return out

    def load_state_dict(self, states: dict[str, Any]) -> None:
        for key, cb in zip(state_keys(self.items), self.items):
            if key in states:
                cb.load_state_dict(states[key])


def state_keys(callbacks: Sequence[Callback]) -> list[str]:
    """``ClassName`` for each callback, ``ClassName#2`` for the second of a kind (the checkpoint's keys)."""
    seen: dict[str, int] = {}
    keys = []
    for cb in callbacks:
        name = getattr(cb, "state_key", None) or type(cb).__qualname__
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return keys


class FunctionCallback(Callback):
    """A plain function ``f(trainer, epoch)`` run at each epoch start."""

    def __init__(self, fn: Callable[["Trainer", int], None]) -> None:
        self.fn = fn
        self.state_key = f"FunctionCallback:{getattr(fn, '__qualname__', '')}"

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

        self.bar = tqdm(total=len(trainer.train_batches), initial=trainer.state.start_step(epoch),
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

    def on_exception(self, trainer: "Trainer", error: BaseException) -> None:
        self.close_bar()

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
