"""The callbacks behind ``--accumulate``, ``--ema`` and ``--mixup``/``--cutmix``, built on the loop's events.

None of them touches the epoch loop: each one is a :class:`Callback` that
the Trainer adds when its option is set (:func:`from_config`), and each
one's state resumes bit-identically.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zoo.errors import ZooError
from zoo.train.callbacks import Batch, Callback

if TYPE_CHECKING:
    from zoo.train.trainer import Trainer


class GradientAccumulation(Callback):
    """Sum the gradients of ``every`` batches, then step once (an ``every`` times larger batch, in memory for one).

    Each loss is divided by the window's length, so the summed gradient is
    the mean over the window; the last window of an epoch may be shorter.
    The schedule still counts batches. A checkpoint in the middle of a
    window saves the gradients summed so far. Under DDP the gradients are
    all-reduced once a window, not once a batch.
    """

    def __init__(self, every: int) -> None:
        if int(every) < 1:
            raise ZooError(f"--accumulate must be at least 1, got {every}")
        self.every = int(every)
        self.params: list[Any] = []
        self.open = False  # gradients summed that the optimizer has not used yet
        self._pending: list[Any] | None = None

    def _window(self, batch: Batch) -> tuple[int, int]:
        """(index in the window, the window's length) of this batch."""
        start = (batch.step - 1) // self.every * self.every
        return batch.step - 1 - start, min(self.every, batch.steps - start)

    def on_fit_start(self, trainer: "Trainer") -> None:
        self.params = list(trainer.forward_module.parameters())
        if self._pending is not None:
            for p, grad in zip(self.params, self._pending):
                p.grad = None if grad is None else grad.to(p.device).clone()
            self.open, self._pending = True, None

    def before_batch(self, trainer: "Trainer", batch: Batch) -> None:
        # Under DDP only the window's last backward all-reduces (what DDP's no_sync() does; set before the
        # forward pass, which is where DDP reads it).
        if hasattr(trainer.net, "require_backward_grad_sync"):
            index, length = self._window(batch)
            trainer.net.require_backward_grad_sync = index == length - 1

    def after_loss(self, trainer: "Trainer", batch: Batch) -> None:
        index, length = self._window(batch)
        batch.zero_grad = index == 0
        batch.optimizer_step = index == length - 1
        self.open = not batch.optimizer_step
        if length > 1:
            batch.loss = batch.loss / length

    def state_dict(self) -> dict[str, Any]:
        if not self.open:
            return {}
        return {"every": self.every, "grads": [None if p.grad is None else p.grad.detach().cpu().clone()
                                               for p in self.params]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("grads") is not None:
            self._pending = list(state["grads"])


class WeightAverage(Callback):
    """An exponential moving average of the weights (``--ema DECAY``), evaluated beside them each epoch.

    ``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn``
    averages parameters and buffers (BatchNorm statistics too) after every
    optimizer step. After validation it adds ``ema_val_loss``/``ema_val_acc``;
    when the average scores better on the monitored metric, ``best/`` holds
    the averaged weights (the row says ``best_weights: ema``). ``last/``
    holds the trained weights, and its training state the average, so
    ``--resume`` continues both.
    """

    state_key = "ema"

    def __init__(self, decay: float) -> None:
        if not 0.0 < float(decay) < 1.0:
            raise ZooError(f"--ema must lie between 0 and 1 (e.g. 0.999), got {decay}")
        self.decay = float(decay)
        self.averaged: Any = None
        self._pending: dict[str, Any] | None = None

    def on_fit_start(self, trainer: "Trainer") -> None:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        module = trainer.forward_module
        self.averaged = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True)
        self.averaged.module.eval()
        if self._pending is not None:
            self.averaged.module.load_state_dict(self._pending["module"])
            self.averaged.n_averaged.copy_(self._pending["n_averaged"])
            self._pending = None
        trainer.weight_variants["ema"] = self.averaged.module

    def after_optimizer_step(self, trainer: "Trainer", batch: Batch) -> None:
        self.averaged.update_parameters(trainer.forward_module)

    def on_validation_end(self, trainer: "Trainer", epoch: int, metrics: dict[str, Any]) -> None:
        if trainer.val_batches is None:
            return
        scores = trainer.validate(module=self.averaged.module)
        metrics.update({f"ema_{k}": v for k, v in scores.items()})

    def on_fit_end(self, trainer: "Trainer", result: Any) -> None:
        trainer.weight_variants.pop("ema", None)

    def state_dict(self) -> dict[str, Any]:
        if self.averaged is None:
            return {}
        return {"decay": self.decay, "n_averaged": self.averaged.n_averaged.detach().cpu().clone(),
                "module": {k: v.detach().cpu().clone() for k, v in self.averaged.module.state_dict().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("module") is not None:
            self._pending = state


class MixUpCutMix(Callback):
    """MixUp (Zhang et al., 2018) and/or CutMix (Yun et al., 2019) on each training batch.

    torchvision's ``transforms.v2.MixUp``/``CutMix`` mix a batch with itself
    rolled by one and return soft targets (rows summing to one), which the
    loss takes as class probabilities; with both set, each batch gets one of
    the two at random. Accuracy is still counted against the batch's own
    labels. The draws come from the global generator, which checkpoints save.
    """

    def __init__(self, num_classes: int, mixup: float = 0.0, cutmix: float = 0.0) -> None:
        from torchvision.transforms import v2

        choices = []
        if mixup > 0:
            choices.append(v2.MixUp(alpha=float(mixup), num_classes=num_classes))
        if cutmix > 0:
            choices.append(v2.CutMix(alpha=float(cutmix), num_classes=num_classes))
        if not choices:
            raise ZooError("MixUpCutMix needs mixup > 0 or cutmix > 0")
        self.mix = choices[0] if len(choices) == 1 else v2.RandomChoice(choices)

    def before_batch(self, trainer: "Trainer", batch: Batch) -> None:
        if batch.x.ndim != 4:
            raise ZooError("--mixup/--cutmix mix images; these inputs are not images (cached features?)")
        batch.x, batch.target = self.mix(batch.x, batch.target)


def check_mixing(config: Any, task: Any, num_classes: int) -> None:
    """Refuse --mixup/--cutmix where soft targets mean nothing."""
    if not (config.mixup or config.cutmix):
        return
    flag = "--mixup" if config.mixup else "--cutmix"
    if config.mixup < 0 or config.cutmix < 0:
        raise ZooError(f"{flag} takes a Beta parameter alpha > 0 (e.g. 0.2), got a negative value")
    if getattr(task, "name", "") != "classification":
        raise ZooError(f"{flag} mixes class labels; this run's task is {task.name}")
    if config.loss == "mse":
        raise ZooError(f"{flag} needs a soft-target loss: use --loss ce or nll, not mse")
    if num_classes < 2:
        raise ZooError(f"{flag} mixes two classes at least; the data has {num_classes}")


def from_config(config: Any, task: Any, num_classes: int) -> list[Callback]:
    """The callbacks ``config`` asks for, in the order they should run."""
    check_mixing(config, task, num_classes)
    callbacks: list[Callback] = []
    if config.mixup or config.cutmix:
        callbacks.append(MixUpCutMix(num_classes, config.mixup, config.cutmix))
    if config.accumulate > 1:
        callbacks.append(GradientAccumulation(config.accumulate))
    if config.ema:
        callbacks.append(WeightAverage(config.ema))
    return callbacks
