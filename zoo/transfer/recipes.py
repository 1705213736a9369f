"""Finetuning recipes by name: ``frozen``, ``lp-ft`` and ``auto`` (``zoo finetune --recipe``).

* ``frozen``: today's default, whatever :func:`zoo.transfer.finetune.finetune` does with the options given.
* ``lp-ft``: linear probing, then finetuning (Kumar et al., ICLR 2022). The head trains on cached
  features first (the frozen path, cheap), then the whole network from that head at a small learning
  rate, with augmentation; BatchNorm statistics train only when there are enough images to estimate
  them. Starting from a trained head keeps the first large gradients from distorting the features.
* ``auto``: the probe of ``lp-ft`` is the frozen head; the second stage runs only when the budget
  leaves room for at least one epoch, stops when the next epoch would overrun it, and is kept only
  when its validation accuracy beats the head's. Every stage and the reason for the choice are logged
  and saved as ``OUT/recipe.json``; ``OUT/best`` is always the kept model.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from zoo.errors import ZooError

RECIPES = ("frozen", "lp-ft", "auto")

# The second stage's defaults, chosen on the tuning images of benchmarks/recipes_transfer.py only (CIFAR-10
# cats and dogs 1000-1799 train, 1800-1999 val; efficientnet_lite0 at 160x160, BatchNorm frozen, EMA 0.99):
# from the probe's 84.0% validation, lr 1e-4 for 3 epochs reached 86.0% and lr 3e-4 for 5 epochs 88.75%.
# An earlier single epoch at 3e-4 with BatchNorm training fell to 73.0%: below 5,000 images BatchNorm
# statistics stay as pretrained. docs/transfer.md has what was and was not measured.
FT_LR = 3e-4
FT_EPOCHS = 5
FT_LAYER_DECAY = 0.8
FT_SCHEDULER = "onecycle"
FT_EMA = 0.99  # --ema of the second stage when none is given
BN_TRAIN_FROM = 5000  # training images from which BatchNorm statistics train in the second stage
AUTO_BUDGET_MINUTES = 10.0
# One finetuning epoch costs about this many times the probe's wall time (decoding, a forward pass over
# train and val, 20 head epochs on features): forward + backward is ~3 forward passes.
EPOCH_COST = 3.0


@dataclass
class Attempt:
    """One stage a recipe ran (or decided not to run)."""

    name: str  # "frozen head" | "lp-ft"
    val_acc: float | None
    seconds: float
    path: str | None
    note: str = ""


@dataclass
class RecipeReport:
    """What a recipe tried, what it kept and why (``OUT/recipe.json``, the ``recipe`` key of ``--json``)."""

    recipe: str
    kept: str
    reason: str
    attempts: list[Attempt] = field(default_factory=list)
    budget_minutes: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finetune_with_recipe(source: str | None, data: Any, config: Any = None, options: Any = None, *,
                         recipe: str = "frozen", budget: float | None = None, ft_lr: float | None = None,
                         ft_epochs: int = FT_EPOCHS, log: Callable[[str], None] | None = None,
                         mean: Any = None, std: Any = None, dry_run: bool = False,
                         before_stage_two: Callable[[], Any] | None = None, **train_options: Any):
    """``zoo.finetune``: :func:`zoo.transfer.finetune.finetune` under a named recipe.

    ``budget`` is in minutes for the whole run (``auto``: 10 by default; ``lp-ft``: none).
    ``ft_lr`` and ``ft_epochs`` are the second stage's learning rate and epochs (the config's
    ``lr`` and ``epochs`` are the probe's). The result carries ``recipe`` (a :class:`RecipeReport`)
    for ``lp-ft`` and ``auto``. ``before_stage_two`` is called just before the whole network
    starts training (the ``zoo finetune`` command sets its process's allocator there).
    """
    from zoo.transfer.finetune import FinetuneOptions, finetune, finetune_config

    if recipe not in RECIPES:
        raise ZooError(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    options = options or FinetuneOptions()
    # Without a config, the finetune defaults (zoo.transfer.defaults), as zoo finetune has them.
    cfg = replace(config, **train_options) if config is not None else finetune_config(**train_options)
    if recipe == "frozen":
        if budget is not None:
            raise ZooError("--budget applies to --recipe auto or lp-ft; the frozen head has no second stage")
        return finetune(source, data, cfg, options, log=log, mean=mean, std=std, dry_run=dry_run)
    if dry_run or mean is not None or std is not None:
        raise ZooError(f"--dry-run and --mean/--std apply to --recipe frozen, not {recipe}")
    if budget is not None and budget <= 0:
        raise ZooError(f"--budget must be a positive number of minutes, got {budget:g}")
    if cfg.resume:
        raise ZooError(f"--resume continues one stage; resume --recipe {recipe} with 'zoo finetune OUT/last'")
    if budget is None and recipe == "auto":
        budget = AUTO_BUDGET_MINUTES
    return _Run(source, data, cfg, options, recipe, budget, ft_lr or FT_LR, ft_epochs, log, before_stage_two).go()


class _Run:
    """The two stages of ``lp-ft`` / ``auto`` and the choice between them."""

    def __init__(self, source, data, cfg, options, recipe, budget, ft_lr, ft_epochs, log,
                 before_stage_two=None) -> None:
        self.source, self.data, self.cfg, self.options = source, data, cfg, options
        self.recipe, self.budget, self.ft_lr, self.ft_epochs = recipe, budget, ft_lr, ft_epochs
        self.say = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.out = Path(cfg.out) if cfg.out else None
        self.started = time.perf_counter()
        self.deadline = self.started + 60 * budget if budget is not None else None
        self.before_stage_two: Callable[[], Any] | None = before_stage_two

    def go(self):
        from zoo.transfer.finetune import finetune

        probe_cfg = replace(self.cfg, augment="none", out=str(self.out / "probe") if self.out else None)
        probe_opts = replace(self.options, freeze="backbone", unfreeze_after=None, cache_features=None)
        self.say(f"recipe {self.recipe}: 1. linear head on cached features")
        probe = finetune(self.source, self.data, probe_cfg, probe_opts, log=self.say)
        head = Attempt("frozen head", probe.val_acc, time.perf_counter() - self.started,
                       str(probe.best_path) if probe.best_path else None)
        report = RecipeReport(self.recipe, "frozen head", "", [head], self.budget)
        if probe.best_path is None:
            raise ZooError("the linear head saved no checkpoint to finetune from; give --out, or use --recipe frozen")
        if probe.val_acc is None and self.recipe == "auto":
            raise ZooError("--recipe auto chooses on the validation split, and this data has none: give --val-split")
        estimate = EPOCH_COST * head.seconds
        left = self.deadline - time.perf_counter() if self.deadline is not None else None
        if left is not None and left < estimate:
            report.reason = (f"the budget ({self.budget:g} min) leaves {max(left, 0):.0f}s, less than one"
                             f" finetuning epoch (~{estimate:.0f}s by the probe's time): kept the frozen head")
            report.attempts.append(Attempt("lp-ft", None, 0.0, None, "not run: budget"))
            return self._finish(probe, report)
        self.say(f"recipe {self.recipe}: 2. the whole network from that head at lr {self.ft_lr:.3g}"
                 + (f", within {left:.0f}s of the budget" if left is not None else ""))
        t0 = time.perf_counter()
        if self.before_stage_two is not None:
            self.before_stage_two()
        deadline = deadline_callback(self.deadline, self.say)
        ft = finetune(str(probe.best_path), self.data, *self._second_stage(probe), log=self.say, callbacks=[deadline])
        if deadline.fired and ft.stopped == "interrupted":
            ft.stopped = "budget"
        ft_try = Attempt("lp-ft", ft.val_acc, time.perf_counter() - t0, str(ft.best_path) if ft.best_path else None,
                         f"{len(ft.history)} of {self.ft_epochs} epochs" + (", stopped by the budget" if deadline.fired else ""))
        report.attempts.append(ft_try)
        return self._choose(probe, ft, report)

    def _second_stage(self, probe) -> tuple[Any, Any]:
        from zoo.data.transforms import format_augment, parse_augment

        size = probe.input_size or self.cfg.input_size or (3, 224, 224)
        augment = self.cfg.augment if self.cfg.augment != "none" else default_augment(size)
        format_augment(parse_augment(augment))  # a bad --augment fails before the stage starts
        cfg = replace(self.cfg, lr=self.ft_lr, epochs=self.ft_epochs, scheduler=FT_SCHEDULER, augment=augment,
                      out=str(self.out) if self.out else None, early_stop=None)
        bn, patterns = bn_mode(probe.model, train_images(probe))
        # Averaged weights suit the second stage's small lr; best/ takes them only when they validate better.
        # 0.99 averages over ~100 steps, about an epoch or two of a few thousand images.
        cfg = replace(cfg, ema=cfg.ema or FT_EMA)
        opts = replace(self.options, freeze="none", freeze_patterns=patterns, bn_policy=bn, keep_head=True,
                       unfreeze_after=None, layer_decay=FT_LAYER_DECAY, cache_features=False, weights=None,
                       encoder=None, pretrained=True)
        self.say(f"recipe {self.recipe}: BatchNorm {'trains' if bn == 'train' else 'stays frozen'}"
                 f" ({train_images(probe)} training images; it trains from {BN_TRAIN_FROM}), augment {augment}")
        return cfg, opts

    def _choose(self, probe, ft, report: RecipeReport):
        head, tried = report.attempts[0], report.attempts[-1]
        if self.recipe == "lp-ft" and ft.best_path is not None:
            report.kept, report.reason = "lp-ft", "--recipe lp-ft keeps the finetuned network"
            return self._finish(ft, report, stage_two=True)
        if tried.val_acc is not None and head.val_acc is not None and tried.val_acc > head.val_acc:
            report.kept = "lp-ft"
            report.reason = (f"lp-ft reached val_acc {100 * tried.val_acc:.2f}% against the frozen head's"
                             f" {100 * head.val_acc:.2f}%")
            return self._finish(ft, report, stage_two=True)
        shown = "no epoch" if tried.val_acc is None else f"val_acc {100 * tried.val_acc:.2f}%"
        report.reason = (f"lp-ft reached {shown}, not above the frozen head's {100 * (head.val_acc or 0):.2f}%:"
                         " kept the frozen head")
        return self._finish(probe, report)

    def _finish(self, result, report: RecipeReport, stage_two: bool = False):
        for a in report.attempts:
            shown = "-" if a.val_acc is None else f"{100 * a.val_acc:.2f}%"
            self.say(f"  tried {a.name:<12} val_acc {shown:>7}  {a.seconds:6.0f}s  {a.note}".rstrip())
        self.say(f"recipe {self.recipe}: {report.reason}")
        if self.out is not None:
            if not stage_two and result.best_path is not None:
                copy_checkpoint(result.best_path, self.out / "best")
                result.best_path = self.out / "best"
            from zoo.io import write_json

            write_json(self.out / "recipe.json", report.to_dict())
        result.recipe = report
        result.seconds = time.perf_counter() - self.started
        return result


def deadline_callback(deadline: float | None, say: Callable[[str], None]):
    """A callback that ends training when the budget runs out: before an epoch that would overrun it,
    or mid-epoch once it is spent (the best epoch so far stays the best)."""
    from zoo.train import Callback

    class _Deadline(Callback):
        fired = False

        def on_epoch_start(self, trainer: Any, epoch: int) -> None:
            self.epoch_started, self.steps = time.perf_counter(), 0

        def on_batch_end(self, trainer: Any, epoch: int, step: int, stats: Any) -> None:
            if deadline is None or self.fired:
                return
            now, self.steps = time.perf_counter(), self.steps + 1
            total = _steps_per_epoch(trainer)
            # After a few steps the epoch's end can be projected: stop now rather than at the deadline
            # when it would land beyond it (a half epoch leaves no better checkpoint).
            if total and self.steps == PROJECT_AFTER and self.steps < total:
                ends = self.epoch_started + (now - self.epoch_started) * total / self.steps
                if ends > deadline:
                    say(f"epoch {epoch}: it would end ~{ends - deadline:.0f}s after the budget; stopping"
                        " (the best epoch so far is kept)")
                    self.fired = True
                    trainer.request_stop()
                    return
            if now > deadline:
                say(f"epoch {epoch}: the budget is spent; stopping (the best epoch so far is kept)")
                self.fired = True
                trainer.request_stop()

        def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, Any]) -> None:
            now = time.perf_counter()
            if deadline is None or self.fired or epoch >= trainer.config.epochs:
                return
            if now + (now - self.epoch_started) > deadline:
                say(f"epoch {epoch}: another epoch (~{now - self.epoch_started:.0f}s) would overrun the budget;"
                    " stopping")
                self.fired = True
                trainer.request_stop()

    return _Deadline()


PROJECT_AFTER = 5  # steps of an epoch after which the deadline callback projects its end


def _steps_per_epoch(trainer: Any) -> int | None:
    try:
        return len(trainer.train_batches)
    except TypeError:
        return None


def default_augment(size: Any) -> str:
    """Random crops (padding a tenth of the side) and flips: the second stage's augmentation."""
    return f"crop={max(1, int(size[-1]) // 10)},flip"


def train_images(result: Any) -> int:
    """How many images the probe trained on (recorded by the trainer's data, else 0)."""
    return int(getattr(result, "train_images", 0) or 0)


def bn_mode(model: Any, images: int) -> tuple[str, tuple[str, ...]]:
    """``("train", ())`` with enough images; else BatchNorm stays in eval with its affine parameters frozen."""
    if images >= BN_TRAIN_FROM:
        return "train", ()
    from zoo.transfer.freeze import is_batchnorm

    names = []
    for name, module in model.named_modules():
        if is_batchnorm(module):
            names += [f"{name}.{p}" for p, _ in module.named_parameters(recurse=False)]
    return "frozen", tuple(names)


def copy_checkpoint(src: str | Path, dst: Path) -> None:
    """Copy a checkpoint directory into place atomically (a temporary copy, then a rename)."""
    from zoo.io import swap_into_place

    tmp = dst.with_name(f".{dst.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    swap_into_place(tmp, dst)
