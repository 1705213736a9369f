"""One epoch of the loop: the training steps, validation, and what a step boundary may stop.

Written as functions over a :class:`zoo.train.trainer.Trainer`, which owns the
parts (model, batches, optimizer, schedule, task, callbacks); the Trainer
class keeps the run's sequence and state.
"""

from __future__ import annotations

import math
import signal
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from zoo.errors import ZooError
from zoo.train.callbacks import RunningStats

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

    from zoo.train.optim import penalty

    cfg, task = trainer.config, trainer.task
    first = trainer.start_step(epoch)
    trainer.train_batches.set_epoch(epoch, first)
    trainer.train_mode(trainer.model)
    net, opt, sched, scaler = trainer.net, trainer.optimizer, trainer.scheduler, trainer.scaler
    device, normalize = trainer.device, trainer.normalize
    gen = torch.Generator().manual_seed(_augment_seed(cfg.seed, epoch, trainer.dist.rank))
    trainable = [p for p in trainer.forward_module.parameters() if p.requires_grad]
    penalised = trainable if (cfg.l1 or cfg.l2) else None
    clip_params = trainable if cfg.clip_grad else None
    stats = RunningStats(device)
    if first:
        gen.set_state(trainer.position["augment_rng"])
        stats = RunningStats(device, **trainer.position["stats"])
    non_blocking = device.type == "cuda"
    # Per-step checks would let ranks stop at different steps; in DDP the
    # all-reduced epoch sums are checked instead, by every rank alike.
    check_every = 0 if trainer.dist.enabled else (1 if device.type == "cpu" else 25)
    autocast = torch.autocast(device.type, dtype=trainer.amp_dtype, enabled=trainer.amp)
    for step, (x, y) in enumerate(trainer.train_batches, first + 1):
        x = normalize(x.to(device, non_blocking=non_blocking), train=True, generator=gen)
        y = y.to(device, non_blocking=non_blocking)
        if trainer.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        target = task.target(x, y)
        with autocast:
            out = net(task.inputs(x, gen))
            loss = task.loss(out, target)
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
        stats.add(loss, task.correct(out, target), int(x.shape[0]))
        if check_every and step % check_every == 0 and not math.isfinite(float(stats.loss_sum)):
            diverged(trainer, epoch, step)
        for cb in trainer.callbacks:
            cb.on_batch_end(trainer, epoch, step, stats)
        if trainer._stop_requested:
            raise _StopRequested({"step": step, "stats": stats.state(), "augment_rng": gen.get_state()})
    return epoch_row(trainer, epoch, stats)


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


def validate(trainer: "Trainer", batches: Any = None) -> dict[str, float]:
    """Loss (and accuracy) on the validation batches, summed over ranks."""
    import torch

    batches = batches or trainer.val_batches
    trainer.model.eval()  # the next epoch's train_mode() switches back
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
            out = trainer.forward_module(x).float()
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
        kept = f"; the last good checkpoint (epoch {trainer.epoch}) is kept in {trainer.out / 'last'}"
    elif trainer.out is not None:
        kept = "; no checkpoint was written yet"
    raise TrainingDivergedError(
        f"loss became NaN/inf at epoch {epoch}, step {step}: lower --lr, add --clip-grad or check the data{kept}"
    )


def track_best(trainer: "Trainer", row: dict[str, Any]) -> bool:
    monitor = trainer.config.monitor
    if monitor not in row:
        monitor = monitor.replace("val_", "train_")
    if monitor not in row:
        monitor = trainer.task.monitor if trainer.task.monitor in row else "train_loss"
    value = row[monitor]
    better = trainer.best_value is None or (value < trainer.best_value if monitor.endswith("loss") else value > trainer.best_value)
    if better:
        trainer.best_value, trainer.best_epoch, trainer.bad_epochs = float(value), row["epoch"], 0
    else:
        trainer.bad_epochs += 1
    return better



@contextmanager
def stop_on_ctrl_c(trainer: "Trainer") -> Iterator[None]:
    # The first Ctrl-C stops at the next step boundary, where the state is
    # whole; a second one stops at once. Under DDP the ranks could stop at
    # different steps, so there Ctrl-C keeps the last epoch's checkpoint.
    if trainer.dist.enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        if trainer._stop_requested:
            raise KeyboardInterrupt
        trainer._stop_requested = True

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
        kept = f"; the checkpoint of epoch {trainer.epoch} is kept in {last}" if trainer.epoch and last else ""
        trainer.say(f"interrupted{kept}")
        return "interrupted"
    where = f"epoch {trainer.epoch + 1}, step {position['step']}/{len(trainer.train_batches)}"
    trainer.say(f"interrupted at {where}: saved as 'last'; continue with --resume {last}" if last
                else f"interrupted at {where}")
    trainer.checkpointer.save(trainer, trainer.history[-1] if trainer.history else None, False, position=position)
    return "interrupted"
