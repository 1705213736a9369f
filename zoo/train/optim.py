"""Optimisers, learning-rate schedules, losses and the lecture's explicit L1/L2 penalties."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from zoo.errors import ZooError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "step", "multistep", "cosine", "onecycle")
LOSSES = ("ce", "nll", "mse")


def build_optimizer(groups: Iterable[Any], name: str, *, lr: float, momentum: float = 0.9,
                    weight_decay: float = 0.0, nesterov: bool = False):
    """``sgd`` (with momentum), ``adam`` or ``adamw`` over parameters or parameter groups.

    Groups may carry their own ``lr`` (discriminative learning rates) and
    ``weight_decay``; the arguments are the defaults for groups without them.
    """
    import torch

    groups = list(groups)
    if not groups:
        raise ZooError("the model has no parameters to train")
    name = name.lower()
    # foreach kernels cut per-step overhead for small models on CPU as well.
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay,
                               nesterov=nesterov and momentum > 0, foreach=True)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay, foreach=True)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, foreach=True)
    raise ZooError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")


def build_scheduler(optimizer, name: str | None, *, epochs: int, steps_per_epoch: int, step_size: int = 10,
                    milestones: Sequence[int] = (), gamma: float = 0.1):
    """A scheduler stepped once per batch; ``step_size`` and ``milestones`` count epochs."""
    import torch.optim.lr_scheduler as S

    name = (name or "none").lower()
    total = max(1, epochs * steps_per_epoch)
    if name == "none":
        return None
    if name == "step":
        return S.StepLR(optimizer, step_size=max(1, step_size * steps_per_epoch), gamma=gamma)
    if name == "multistep":
        if not milestones:
            raise ZooError("--scheduler multistep needs --milestones, e.g. --milestones 30,60")
        return S.MultiStepLR(optimizer, milestones=[m * steps_per_epoch for m in milestones], gamma=gamma)
    if name == "cosine":
        return S.CosineAnnealingLR(optimizer, T_max=total)
    if name == "onecycle":
        cycle = any(g.get("momentum", 0) > 0 or "betas" in g for g in optimizer.param_groups)
        return S.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total,
                            cycle_momentum=cycle)
    raise ZooError(f"unknown scheduler {name!r}; choose from {', '.join(SCHEDULERS)}")


def extend_scheduler(scheduler, group: dict[str, Any]) -> None:
    """Teach a scheduler about a parameter group added after it was built."""
    if scheduler is None:
        return
    lr = group["lr"]
    group.setdefault("initial_lr", lr)
    if hasattr(scheduler, "base_lrs"):
        scheduler.base_lrs.append(group["initial_lr"])
    if type(scheduler).__name__ == "OneCycleLR":
        group["max_lr"] = lr
        group["initial_lr"] = lr / 25.0  # OneCycleLR's default div_factor
        group["min_lr"] = group["initial_lr"] / 1e4
        if getattr(scheduler, "cycle_momentum", False):
            if "betas" in group:
                group["max_momentum"], group["base_momentum"] = group["betas"][0], 0.85
            else:
                group["max_momentum"], group["base_momentum"] = group.get("momentum", 0.9), 0.85
    if hasattr(scheduler, "_last_lr"):
        scheduler._last_lr = [g["lr"] for g in scheduler.optimizer.param_groups]


def make_loss(name: str, label_smoothing: float = 0.0) -> Callable[[Any, Any], Any]:
    """``ce`` (cross-entropy), ``nll`` (on log-softmax) or ``mse`` (softmax against one-hot), with smoothing."""
    import torch.nn.functional as F

    name = name.lower()
    eps = float(label_smoothing)
    if not 0.0 <= eps < 1.0:
        raise ZooError(f"--label-smoothing must lie in [0, 1), got {eps}")
    if name == "ce":
        def ce(logits, target):
            return F.cross_entropy(logits, target, label_smoothing=eps)
        return ce
    if name == "nll":
        def nll(logits, target):
            logp = F.log_softmax(logits, dim=1)
            loss = F.nll_loss(logp, target)
            # Smoothing by hand: nll_loss has no label_smoothing argument.
            return loss if eps == 0 else (1 - eps) * loss - eps * logp.mean(dim=1).mean()
        return nll
    if name == "mse":
        def mse(logits, target):
            k = logits.shape[1]
            onehot = F.one_hot(target, k).to(logits.dtype)
            if eps:
                onehot = onehot * (1 - eps) + eps / k
            return F.mse_loss(F.softmax(logits, dim=1), onehot)
        return mse
    raise ZooError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")


def penalty(params: Sequence[Any], l2: float = 0.0, l1: float = 0.0):
    """The lecture's explicit regularisers: ``l2 * sum(p**2) + l1 * sum(|p|)`` over ``params``."""
    total = None
    if l2:
        total = l2 * sum(p.pow(2.0).sum() for p in params)
    if l1:
        term = l1 * sum(p.abs().sum() for p in params)
        total = term if total is None else total + term
    return total
