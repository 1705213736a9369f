"""What a Trainer hands the checkpointer: the training state, and which weights best/ holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from zoo.train.scope import swapped_weights

if TYPE_CHECKING:
    from zoo.train.trainer import Trainer


def training_state(trainer: "Trainer") -> dict[str, Any]:
    """What --resume needs besides the weights: the run state, optimizer, scaler, callbacks and RNGs."""
    import torch

    cfg = trainer.config
    return {
        **trainer.state.state_dict(),
        "epochs": cfg.epochs,
        "steps_per_epoch": len(trainer.train_batches),
        "optimizer_name": cfg.optimizer,
        "scheduler_name": cfg.scheduler,
        "optimizer": trainer.optimizer.state_dict(),
        "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else None,
        "callbacks": trainer.hooks.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def save_run(trainer: "Trainer", row: Mapping[str, Any] | None, improved: bool, variant: str = "",
             position: Mapping[str, Any] | None = None) -> None:
    """``last/`` (with ``position`` after a stop mid-epoch), and ``best/`` when ``improved``, from ``variant``'s weights."""
    if not trainer.checkpointer.enabled:
        return
    metrics = dict(row or {})
    if trainer.state.best_epoch is not None:
        metrics["best_epoch"] = trainer.state.best_epoch
    if position is not None:
        trainer.state.position = dict(position)
        metrics["interrupted"] = True
        metrics["interrupted_at"] = {"epoch": trainer.state.epoch + 1, "step": int(position["step"])}
    config = trainer.checkpoint_config(metrics)
    if improved:
        with swapped_weights(trainer.forward_module, trainer.weight_variants.get(variant) if variant else None):
            trainer.checkpointer.save_best(trainer.model, config)
    trainer.checkpointer.save_last(trainer.model, config, trainer.state_dict(), trainer.state.history)
