"""One epoch of the loop: the training steps, validation, and what a step boundary may stop.

Written as functions over a :class:`zoo.train.trainer.Trainer`, which owns the
parts (model, batches, optimizer, schedule, task, callbacks); the run's
progress is ``trainer.state`` (:class:`zoo.train.state.RunState`). A step is
:class:`StepRunner`: forward, loss, backward, optimizer and schedule, with
the callbacks' batch events between them, so gradient accumulation, mixup or
weight averaging are callbacks and this module does not change for them.
"""

from __future__ import annotations

import math
import signal
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from zoo.errors import ZooError
from zoo.train.callbacks import Batch, RunningStats

if TYPE_CHECKING:
    from zoo.train.trainer import Trainer


class TrainingDivergedError(ZooError):
    """The loss became NaN or infinite."""


class _StopRequested(Exception):
    """Raised at a step boundary after Ctrl-C or ``request_stop()``; carries the position in the epoch."""

    def __init__(self, position: dict[str, Any]) -> None:
        super().__init__("stop requested")
        self.position = position


def train_epoch(trainer: "Trainer", epoch: int) -> dict[str, Any]:
    """One pass over the training batches; returns the epoch's train metrics."""
    import torch

    cfg, task, state = trainer.config, trainer.task, trainer.state
    first = state.start_step(epoch)
    batches = trainer.train_batches
    batches.set_epoch(epoch, first)
    trainer.train_mode(trainer.model)
    device, normalize = trainer.device, trainer.normalize
    gen = torch.Generator().manual_seed(_augment_seed(cfg.seed, epoch, trainer.dist.rank))
    stats = RunningStats(device)
    if first:
        gen.set_state(state.position["augment_rng"])
        stats = RunningStats(device, **state.position["stats"])
    run = StepRunner(trainer, trainer.hooks)
    non_blocking = device.type == "cuda"
    # Per-step checks would let ranks stop at different steps; in DDP the
    # all-reduced epoch sums are checked instead, by every rank alike.
    check_every = 0 if trainer.dist.enabled else (1 if device.type == "cpu" else 25)
    steps = len(batches)
    for step, (x, y) in enumerate(batches, first + 1):
        x = normalize(x.to(device, non_blocking=non_blocking), train=True, generator=gen)
        y = y.to(device, non_blocking=non_blocking)
        if trainer.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        target = task.target(x, y)
        batch = Batch(epoch, step, steps, x, target, target, gen)
        loss = run(batch)
        state.step += 1
        stats.add(loss, task.correct(batch.out, batch.labels), int(x.shape[0]))
        if check_every and step % check_every == 0 and not math.isfinite(float(stats.loss_sum)):
            diverged(trainer, epoch, step)
        trainer.hooks.call("on_batch_end", trainer, epoch, step, stats)
        if state.stop_requested:
            raise _StopRequested({"step": step, "stats": stats.state(), "augment_rng": gen.get_state()})
    return epoch_row(trainer, epoch, stats)


class StepRunner:
    """Forward, loss, backward and (when the batch says so) the optimizer and schedule steps of one batch.

    The batch events of ``hooks`` run around them; the LR finder runs the
    same steps with no hooks.
    """

    def __init__(self, trainer: "Trainer", hooks: Any = None, schedule: bool = True) -> None:
        import torch

        cfg = trainer.config
        self.trainer, self.hooks, self.task, self.schedule = trainer, hooks, trainer.task, schedule
        trainable = [p for p in trainer.forward_module.parameters() if p.requires_grad]
        self.penalised = trainable if (cfg.l1 or cfg.l2) else None
        self.clip_params = trainable if cfg.clip_grad else None
        self.autocast = torch.autocast(trainer.device.type, dtype=trainer.amp_dtype, enabled=trainer.amp)

    def _call(self, event: str, batch: Batch) -> None:
        if self.hooks is not None:
            self.hooks.call(event, self.trainer, batch)

    def __call__(self, batch: Batch) -> Any:
        """Train on ``batch``; returns its loss (detached, before ``after_loss`` changed it)."""
        from zoo.train.optim import penalty

        trainer, cfg = self.trainer, self.trainer.config
        opt, scaler = trainer.optimizer, trainer.scaler
        self._call("before_batch", batch)
        with self.autocast:
            batch.out = trainer.net(self.task.inputs(batch.x, batch.generator))
            batch.loss = self.task.loss(batch.out, batch.target)
        if self.penalised:
            batch.loss = batch.loss + penalty(self.penalised, l2=cfg.l2, l1=cfg.l1)
        reported = batch.loss.detach()
        self._call("after_loss", batch)
        if batch.zero_grad:
            opt.zero_grad(set_to_none=True)
        (scaler.scale(batch.loss) if scaler is not None else batch.loss).backward()
        if batch.optimizer_step:
            self._optimizer_step(batch)
        self._schedule_step(stepped=batch.optimizer_step)
        return reported

    def _optimizer_step(self, batch: Batch) -> None:
        import torch

        opt, scaler, cfg = self.trainer.optimizer, self.trainer.scaler, self.trainer.config
        if scaler is not None and self.clip_params:
            scaler.unscale_(opt)
        self._call("before_optimizer_step", batch)
        if self.clip_params:
            torch.nn.utils.clip_grad_norm_(self.clip_params, cfg.clip_grad)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        self._call("after_optimizer_step", batch)

    def _schedule_step(self, stepped: bool) -> None:
        # The schedule counts batches, accumulated or not, so its length and --resume are those of a plain run.
        sched = self.trainer.scheduler
        if sched is None or not self.schedule:
            return
        if stepped:
            sched.step()
            return
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "step() before optimizer.step()": intended while accumulating
            sched.step()


def epoch_row(trainer: "Trainer", epoch: int, stats: RunningStats) -> dict[str, Any]:
    import time

    import torch

    elapsed = time.perf_counter() - stats.started
    totals = torch.stack([stats.loss_sum, stats.correct.to(torch.float64),
                          torch.tensor(float(stats.seen), dtype=torch.float64, device=trainer.device)])
    trainer.dist.all_reduce_sum(totals)
    total_loss, total_correct, total_seen = (float(v) for v in totals.cpu())
    if not math.isfinite(total_loss):
        diverged(trainer, epoch, len(trainer.train_batches))
    row: dict[str, Any] = {"epoch": epoch, "train_loss": total_loss / max(1.0, total_seen)}
    if trainer.task.has_accuracy:
        row["train_acc"] = total_correct / max(1.0, total_seen)
    fresh = total_seen - stats.start_seen * trainer.dist.world_size  # a resumed epoch counts only its new part
    row.update({"images_per_s": fresh / elapsed if elapsed > 0 else 0.0, "epoch_time": elapsed})
    skipped = getattr(trainer.train_batches, "skipped", None)
    if skipped:
        row["skipped_images"] = sum(skipped.values())
    return row


def validate(trainer: "Trainer", batches: Any = None, module: Any = None) -> dict[str, float]:
    """Loss (and accuracy) of ``module`` (the trained one) on the validation batches, summed over ranks."""
    import torch

    batches = batches or trainer.val_batches
    module = module if module is not None else trainer.forward_module
    trainer.model.eval()  # the next epoch's train_mode() switches back
    module.eval()
    device, task = trainer.device, trainer.task
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.float64, device=device)
    seen = torch.zeros((), dtype=torch.float64, device=device)
    batches.set_epoch(0)
    with torch.inference_mode(), torch.autocast(device.type, dtype=trainer.amp_dtype, enabled=trainer.amp):
        for x, y in batches:
            x = trainer.normalize(x.to(device, non_blocking=True), train=False)
            y = y.to(device, non_blocking=True)
            if trainer.channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            target = task.target(x, y)
            out = module(x).float()
            loss_sum += task.loss(out, target).double() * x.shape[0]
            right = task.correct(out, target)
            if right is not None:
                correct += right
            seen += x.shape[0]
    totals = torch.stack([loss_sum, correct, seen])
    # Validation shards are not padded: each sample counts once over all ranks.
    trainer.dist.all_reduce_sum(totals)
    loss, corr, n = (float(v) for v in totals.cpu())
    row = {"val_loss": loss / max(1.0, n)}
    if task.has_accuracy:
        row["val_acc"] = corr / max(1.0, n)
    return row


def diverged(trainer: "Trainer", epoch: int, step: int) -> None:
    kept = ""
    if trainer.out is not None and (trainer.out / "last").exists():
        kept = f"; the last good checkpoint (epoch {trainer.state.epoch}) is kept in {trainer.out / 'last'}"
    elif trainer.out is not None:
        kept = "; no checkpoint was written yet"
    raise TrainingDivergedError(
        f"loss became NaN/inf at epoch {epoch}, step {step}: lower --lr, add --clip-grad or check the data{kept}"
    )


@contextmanager
def stop_on_ctrl_c(trainer: "Trainer") -> Iterator[None]:
    # The first Ctrl-C stops at the next step boundary, where the state is
    # whole; a second one stops at once. Under DDP the ranks could stop at
    # different steps, so there Ctrl-C keeps the last epoch's checkpoint.
    if trainer.dist.enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        if trainer.state.stop_requested:
            raise KeyboardInterrupt
        trainer.state.stop_requested = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _augment_seed(seed: int, epoch: int, rank: int) -> int:
    return (int(seed) * 2_654_435_761 + int(epoch) * 40_503 + int(rank) * 97 + 1) % (2**63 - 1)


def save_interrupted(trainer: "Trainer", position: dict[str, Any] | None) -> str:
    """After Ctrl-C: save the step-boundary state as 'last' (``position``), or keep the last epoch's (None)."""
    if trainer.reporter is not None:
        trainer.reporter.close_bar()
    last = trainer.out / "last" if trainer.out is not None else None
    if position is None:
        done = trainer.state.epoch
        kept = f"; the checkpoint of epoch {done} is kept in {last}" if done and last else ""
        trainer.say(f"interrupted{kept}")
        return "interrupted"
    where = f"epoch {trainer.state.epoch + 1}, step {position['step']}/{len(trainer.train_batches)}"
    trainer.say(f"interrupted at {where}: saved as 'last'; continue with --resume {last}" if last
                else f"interrupted at {where}")
    history = trainer.state.history
    trainer.save_checkpoint(history[-1] if history else None, False, position=position)
    return "interrupted"
