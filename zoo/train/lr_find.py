"""The learning-rate range test (Smith, 2015: "Cyclical Learning Rates for Training Neural Networks").

The learning rate grows exponentially from ``start`` to ``end`` over at most
``steps`` training steps; the loss is smoothed (an exponential moving average
with bias correction) and the test stops once the smoothed loss exceeds
``diverge`` times the lowest seen, or turns NaN. The suggestion is the
learning rate of the lowest smoothed loss (the first tenth of the steps left
out: the average starts at one batch's loss) divided by ten: the loss still
falls there, well short of where training blows up.

It runs the loop's own steps (:class:`zoo.train.epoch.StepRunner`, without
callbacks) on a set-up Trainer, and afterwards puts the weights, buffers,
optimizer state, learning rates and global random generators back exactly as
they were. Every parameter group's learning rate moves by the same factor,
so discriminative learning rates keep their ratios.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from zoo.errors import ZooError
from zoo.train.callbacks import Batch
from zoo.train.epoch import StepRunner

if TYPE_CHECKING:
    from zoo.train.trainer import Trainer


class LRFindDivergedError(ZooError):
    """The loss was not finite, or blew up, within the first steps of the range test."""


@dataclass
class LRFinding:
    """The range test's trace and its suggestion."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # smoothed
    raw: list[float] = field(default_factory=list)
    suggestion: float = 0.0
    lowest: float = 0.0  # the learning rate of the lowest smoothed loss
    stopped: str = "end"  # end | diverged

    def summary(self) -> str:
        why = "the loss diverged" if self.stopped == "diverged" else "the range ended"
        return (f"lr-find: suggested lr {self.suggestion:.3g} (lowest smoothed loss at {self.lowest:.3g}, / 10);"
                f" tried {self.lrs[0]:.1e} to {self.lrs[-1]:.1e} in {len(self.lrs)} steps, until {why}")

    def to_dict(self) -> dict[str, Any]:
        return {"suggestion": self.suggestion, "lowest": self.lowest, "stopped": self.stopped, "lrs": self.lrs,
                "losses": self.losses}

    def plot(self, path: str | Path) -> Path:
        """Smoothed loss against the learning rate (log scale), the suggestion marked; written atomically."""
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        from zoo.io import atomic_write

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(self.lrs, self.losses, "-", label="smoothed loss")
        ax.axvline(self.suggestion, color="tab:red", ls="--", label=f"suggested {self.suggestion:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
        fig.tight_layout()
        try:
            return atomic_write(Path(path), lambda p: fig.savefig(p, dpi=100, format="png"))
        finally:
            plt.close(fig)


def find_lr(trainer: "Trainer", *, start: float = 1e-7, end: float = 10.0, steps: int = 100, beta: float = 0.98,
            diverge: float = 4.0) -> LRFinding:
    """Run the range test on ``trainer`` (set up first) and return what it found; the trainer is left unchanged."""
    import copy

    import torch

    if not 0 < start < end:
        raise ZooError(f"the LR range needs 0 < start < end, got {start:g} and {end:g}")
    if steps < 5:
        raise ZooError(f"the LR range test needs at least 5 steps, got {steps}")
    if trainer.optimizer is None:
        raise ZooError("find_lr needs a set-up trainer: call trainer.setup() first")
    model, optimizer = trainer.forward_module, trainer.optimizer
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    opt_state = copy.deepcopy(optimizer.state_dict())
    lrs = [g["lr"] for g in optimizer.param_groups]
    was_training = trainer.model.training
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(trainer.config.seed)
            finding = _ramp(trainer, start, end, steps, beta, diverge)
    finally:
        model.load_state_dict(weights)
        optimizer.load_state_dict(opt_state)
        for group, lr in zip(optimizer.param_groups, lrs):
            group["lr"] = lr
        trainer.model.train(was_training)
    return _suggest(finding, steps)


def _ramp(trainer: "Trainer", start: float, end: float, steps: int, beta: float, diverge: float) -> LRFinding:
    import torch

    run = StepRunner(trainer, hooks=None, schedule=False)
    groups = trainer.optimizer.param_groups
    base = [g["lr"] / trainer.config.lr for g in groups]  # each group's share of the configured lr
    growth = (end / start) ** (1.0 / (steps - 1))
    gen = torch.Generator().manual_seed(trainer.config.seed)
    trainer.train_mode(trainer.model)
    found, avg, best = LRFinding(), 0.0, math.inf
    for i, (x, y) in zip(range(steps), _batches(trainer)):
        lr = start * growth**i
        for group, share in zip(groups, base):
            group["lr"] = lr * share
        x = trainer.normalize(x.to(trainer.device), train=True, generator=gen)
        if trainer.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        target = trainer.task.target(x, y.to(trainer.device))
        loss = float(run(Batch(0, i + 1, steps, x, target, target, gen)))
        found.lrs.append(lr)
        found.raw.append(loss)
        if not math.isfinite(loss):
            found.losses.append(math.inf)
            found.stopped = "diverged"
            break
        avg = beta * avg + (1 - beta) * loss
        smoothed = avg / (1 - beta ** (i + 1))
        found.losses.append(smoothed)
        best = min(best, smoothed)
        if smoothed > diverge * best:
            found.stopped = "diverged"
            break
    return found


def _batches(trainer: "Trainer") -> Iterator[Any]:
    """Training batches, epoch after epoch (shuffled as the run's own epochs are not: no epoch number is reused)."""
    turn = 0
    while True:
        turn += 1
        trainer.train_batches.set_epoch(10_000 + turn, 0)
        empty = True
        for item in trainer.train_batches:
            empty = False
            yield item
        if empty:
            return


def _suggest(found: LRFinding, steps: int) -> LRFinding:
    # The first steps are left out of the minimum: the smoothed loss starts at one batch's loss, which may
    # happen to be low; the trace must also outlast them, or the loss diverged from the start.
    skip = max(3, len(found.lrs) // 10)
    finite = [(loss, lr) for loss, lr in zip(found.losses, found.lrs) if math.isfinite(loss)][skip:]
    if not finite or (found.stopped == "diverged" and len(found.lrs) <= 2 * skip):
        raise LRFindDivergedError(
            f"the loss diverged at step {len(found.lrs)} of {steps} of the LR range test, right from the start"
            f" (lr {found.lrs[-1]:.1e});"
            " the model is unchanged. Check the data and the model (inputs normalised? labels right?) or pass"
            " --lr yourself"
        )
    _, found.lowest = min(finite)
    found.suggestion = found.lowest / 10.0
    return found
