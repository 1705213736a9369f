"""What the loop optimises: the loss, the target and the metrics of one kind of model.

The loop itself (devices, batches, AMP, DDP, resume, checkpoints) is the same
for every task; a task says how a batch becomes a loss.

* :class:`ClassificationTask`: logits against labels; loss and accuracy.
* :class:`MultiLabelTask`: one sigmoid per class against multi-hot labels (BCE).
* :class:`ReconstructionTask`: an autoencoder's output against its own
  (normalised, clean) input; loss only. ``noise`` > 0 corrupts the input and
  keeps the target clean (a denoising autoencoder).
"""

from __future__ import annotations

from typing import Any

from zoo.errors import ZooError


class Task:
    """The interface the loop calls; subclasses fill it in."""

    name = "task"
    has_accuracy = False
    monitor = "val_loss"  # the default metric that picks the best checkpoint

    def inputs(self, x: Any, generator: Any = None) -> Any:
        """What the model sees (the normalised batch, possibly corrupted)."""
        return x

    def target(self, x: Any, y: Any) -> Any:
        """What the output is compared with."""
        raise NotImplementedError

    def loss(self, out: Any, target: Any) -> Any:
        raise NotImplementedError

    def correct(self, out: Any, target: Any) -> Any:
        """How many of the batch are right (a tensor), or None when the task has no accuracy."""
        return None

    def config_entries(self) -> dict[str, Any]:
        """What a checkpoint's config.json must say for the model to be read right (e.g. multi-label)."""
        return {}


class ClassificationTask(Task):
    """Cross-entropy (or ``nll``/``mse``) on labels, with accuracy."""

    name = "classification"
    has_accuracy = True
    monitor = "val_acc"

    def __init__(self, loss: str = "ce", label_smoothing: float = 0.0) -> None:
        from zoo.train.optim import make_loss

        self.loss_fn = make_loss(loss, label_smoothing)

    def target(self, x: Any, y: Any) -> Any:
        return y

    def loss(self, out: Any, target: Any) -> Any:
        return self.loss_fn(out, target)

    def correct(self, out: Any, target: Any) -> Any:
        return (out.detach().argmax(1) == target).sum()


class MultiLabelTask(Task):
    """Several labels per image: one sigmoid per class, binary cross-entropy against multi-hot targets.

    Accuracy counts the images whose every label is right at ``threshold``
    (exact match); ``zoo evaluate`` adds average precision and F1.
    """

    name = "multi_label"
    has_accuracy = True
    monitor = "val_loss"

    def __init__(self, threshold: float = 0.5, label_smoothing: float = 0.0) -> None:
        if not 0.0 < threshold < 1.0:
            raise ZooError(f"--threshold must lie between 0 and 1, got {threshold!r}")
        self.threshold = float(threshold)
        self.label_smoothing = float(label_smoothing)

    def target(self, x: Any, y: Any) -> Any:
        return y.float()

    def loss(self, out: Any, target: Any) -> Any:
        from torch.nn import functional as F

        if self.label_smoothing:
            target = target * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return F.binary_cross_entropy_with_logits(out.float(), target)

    def correct(self, out: Any, target: Any) -> Any:
        import math

        cut = math.log(self.threshold / (1.0 - self.threshold))  # sigmoid(z) >= threshold  <=>  z >= logit(threshold)
        return ((out.detach().float() >= cut) == (target > 0.5)).all(1).sum()

    def config_entries(self) -> dict[str, Any]:
        return {"multi_label": True, "threshold": self.threshold}


RECONSTRUCTION_LOSSES = ("l2", "l1")


class ReconstructionTask(Task):
    """L2 or L1 between the reconstruction and the clean normalised input."""

    name = "reconstruction"

    def __init__(self, loss: str = "l2", noise: float = 0.0) -> None:
        from torch.nn import functional as F

        if loss not in RECONSTRUCTION_LOSSES:
            raise ZooError(f"unknown reconstruction loss {loss!r}; choose from: {', '.join(RECONSTRUCTION_LOSSES)}")
        if not noise >= 0:
            raise ZooError(f"noise must be 0 or more, got {noise!r}")
        self.loss_fn = F.mse_loss if loss == "l2" else F.l1_loss
        self.noise = float(noise)

    def inputs(self, x: Any, generator: Any = None) -> Any:
        if not self.noise:
            return x
        import torch

        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
        return x + self.noise * noise

    def target(self, x: Any, y: Any) -> Any:
        return x

    def loss(self, out: Any, target: Any) -> Any:
        return self.loss_fn(out.float(), target.float())
