"""Setting a Trainer up: device, threads, normalisation, batches, optimizer, ``--lr auto``, schedule, resume."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from zoo.errors import CheckpointError, DataError, ZooError
from zoo.io import claim_run_dir
from zoo.registry import model_info
from zoo.train import checkpointer as ckpt
from zoo.train.callbacks import Callbacks
from zoo.train.prepare import choose_mean_std, default_threads, length, make_run_batches, place

if TYPE_CHECKING:
    from zoo.train.trainer import Trainer


def setup_run(trainer: "Trainer") -> None:
    """Device, threads, mean/std, batches, optimizer, --lr auto and schedule; --resume loaded."""
    import torch

    from zoo.data.transforms import BatchAugment, Normalize, parse_augment
    from zoo.train.optim import build_optimizer

    cfg = trainer.config
    if trainer.out is not None and model_info(trainer.model) is None:
        raise CheckpointError(
            "checkpoints need a model built by zoo.create_model (it records the architecture);"
            " build it that way, or train without out="
        )
    claim_run_dir(trainer.out, resume=cfg.resume, overwrite=cfg.overwrite, main=trainer.dist.is_main)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    n_train = length(trainer.train_data)
    if trainer.dist.enabled and n_train is not None and n_train < trainer.dist.world_size:
        raise DataError(
            f"{trainer.dist.world_size} processes but only {n_train} training samples: every rank needs at"
            " least one; use fewer processes (--nproc / --nproc_per_node)"
        )
    trainer.device, trainer.amp, trainer.amp_dtype, trainer.channels_last = place(cfg, trainer.dist)
    if not cfg.threads and trainer.device.type == "cpu":
        threads = default_threads(trainer.model, trainer.forward_module, trainer.input_size)
        if threads:
            torch.set_num_threads(threads)
    state = resume_config = None
    if cfg.resume:
        state, resume_config = ckpt.Checkpointer.read(cfg.resume, trainer.model, trainer.class_names)
        ckpt.check_epochs_left(state, cfg.epochs, cfg.resume)
        trainer.mean = trainer.mean or resume_config.get("mean")
        trainer.std = trainer.std or resume_config.get("std")
    if trainer.mean is None or trainer.std is None:
        trainer.mean, trainer.std = choose_mean_std(trainer.train_data, trainer.model, cfg.normalize, trainer.input_size)
    trainer.augs = parse_augment(cfg.augment)
    trainer.normalize = Normalize(trainer.mean, trainer.std, BatchAugment(trainer.augs))
    trainer.train_batches, trainer.val_batches = make_run_batches(trainer)
    model = trainer.model.to(trainer.device)
    if trainer.channels_last:
        model = model.to(memory_format=torch.channels_last)
    cfg = trainer.config = choose_cpu_precision(trainer, cfg, resume_config)
    if state is not None:
        ckpt.Checkpointer.load_weights(cfg.resume, trainer.model)
        ckpt.check_position(len(trainer.train_batches), state, cfg.resume)
    groups = trainer.param_groups(model) if callable(trainer.param_groups) else trainer.param_groups
    if groups is None:
        # Every parameter, frozen ones included: they get no gradient and the
        # optimizer skips them, so a callback can unfreeze by flipping requires_grad.
        groups = [{"params": list(trainer.forward_module.parameters())}]
    trainer.optimizer = build_optimizer([dict(g) for g in groups], cfg.optimizer, lr=cfg.lr, momentum=cfg.momentum,
                                     weight_decay=cfg.weight_decay)
    if state is not None:
        ckpt.restore_optimizer(trainer.optimizer, cfg.optimizer, state, cfg.resume)
    trainer.scaler = torch.amp.GradScaler("cuda") if (trainer.amp and trainer.amp_dtype == torch.float16) else None
    trainer.net = trainer._wrap(trainer.forward_module)
    if cfg.lr_find:
        auto_lr(trainer, resume_config)
    schedule(trainer, state)


def choose_cpu_precision(trainer: "Trainer", cfg: Any, resume_config: Mapping[str, Any] | None) -> Any:
    """The config with ``amp`` settled where the CPU default left it open: bf16 only if it trains faster.

    On a CPU with bfloat16 units and no ``--amp``/``--no-amp``, a whole
    network (not a head on cached features) keeps bf16 autocast only when a
    timed step says it pays (:func:`zoo.train.prepare.bf16_pays`). A resumed
    run takes the precision its checkpoint trained in, so resume stays exact.
    The choice is written into the config, so checkpoints record it.
    """
    from dataclasses import replace

    if cfg.amp is not None or trainer.device.type != "cpu" or not trainer.amp:
        return cfg
    if resume_config is not None:
        saved = resume_config.get("train_args", {}).get("amp")
        if isinstance(saved, bool):
            trainer.amp = saved
            return replace(cfg, amp=saved)
        return cfg
    if trainer.forward_module is not trainer.model or not trainer.input_size or trainer.dist.enabled:
        return cfg  # a head on features trains in seconds either way; data-parallel ranks must agree
    from zoo.train.prepare import bf16_pays

    try:
        keep, fp32, bf16 = bf16_pays(trainer.model, trainer.input_size, cfg.batch_size,
                                     channels_last=bool(trainer.channels_last))
    except Exception:  # a model the probe cannot run on random images: leave the CPU's default
        return cfg
    if not keep:
        trainer.amp = False
        trainer.say(f"zoo: bf16 autocast off for this model: float32 trains as fast or faster here ({fp32:,.0f} vs"
                    f" {bf16:,.0f} img/s in a timed step; --amp forces bf16)")
    return replace(cfg, amp=keep)


def schedule(trainer: "Trainer", state: Mapping[str, Any] | None) -> None:
    """Build the LR schedule; on resume, restore the run's progress and fast-forward the schedule to it."""
    from zoo.train.optim import build_scheduler

    cfg, steps = trainer.config, len(trainer.train_batches)
    trainer.scheduler = build_scheduler(trainer.optimizer, cfg.scheduler, epochs=cfg.epochs, steps_per_epoch=steps,
                                     step_size=cfg.step_size, milestones=cfg.milestones, gamma=cfg.gamma)
    if state is None:
        return
    trainer.state.load_state_dict(state)
    trainer.hooks = Callbacks(trainer.callbacks)
    trainer.hooks.load_state_dict(state.get("callbacks") or {})
    if trainer.scaler is not None and state.get("scaler"):
        trainer.scaler.load_state_dict(state["scaler"])
    trainer._resume = dict(state)  # its RNG states, applied when fit starts
    done = trainer.state.epoch * steps + trainer.state.start_step(trainer.state.epoch + 1)
    ckpt.fast_forward(trainer.scheduler, min(done, cfg.epochs * steps))

def auto_lr(trainer: "Trainer", resume_config: Mapping[str, Any] | None) -> None:
    """``--lr auto``: the LR range test's suggestion (or, on resume, the one the run found)."""
    if resume_config is not None:
        found = float(resume_config.get("train_args", {}).get("lr", trainer.config.lr))
        return trainer.set_lr(found)
    if trainer.dist.enabled:
        raise ZooError("--lr auto runs the LR range test in one process; run 'zoo lr-find' first and pass"
                       " its --lr to the data-parallel run")
    from zoo.train.lr_find import find_lr

    found = find_lr(trainer)
    trainer.say(found.summary())
    trainer.set_lr(found.suggestion)


def seed_run(trainer: "Trainer") -> None:
    """The global generators (dropout, mixup): seeded from the config, or as the checkpoint left them."""
    import torch

    if trainer._resume is not None:
        ckpt.restore_rng(trainer._resume)
        return
    cfg, dist = trainer.config, trainer.dist
    # Each rank draws its own dropout masks (DDP broadcasts rank 0's initial weights anyway).
    torch.manual_seed(cfg.seed * 1_000 + dist.rank if dist.enabled else cfg.seed)
