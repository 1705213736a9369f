"""Checkpoints of a run: ``best/`` and ``last/`` on the way, and what ``--resume`` reads back.

The resume rule, one for every case:

* The weights, the optimizer's state (momentum buffers, Adam moments), the
  epoch counters and the random generators continue from the checkpoint.
* The optimizer's *hyperparameters* (learning rates, momentum, weight decay)
  are the ones this run is configured with, and the learning-rate schedule is
  rebuilt for this run's total number of steps and fast-forwarded to the step
  where the checkpoint stopped. With the same options this is exactly the run
  that was interrupted; with ``--epochs 60`` after a 50-epoch cosine run it
  is the 60-epoch cosine curve from its 50th epoch on; with a scheduler added
  or changed it is the new schedule from that step.
* What the rule cannot honour is refused with one line: another optimizer
  type, another architecture or class list, a mid-epoch checkpoint resumed
  with another number of batches per epoch, and ``--epochs`` no larger than
  the epochs already trained (nothing to do: it says so instead of
  reporting the old run as if it had just run).

A checkpoint written by Ctrl-C in the middle of an epoch holds the state at
the end of the last finished step and the position in the epoch; resuming it
skips the batches already trained on and ends bit-identical (on CPU) to a
run that was never interrupted.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from zoo.errors import CheckpointError, NothingToResumeError, ZooError
from zoo.registry import model_info
from zoo.text import detail_line

if TYPE_CHECKING:
    from zoo.train.trainer import Trainer

# Keys a scheduler adds to optimizer parameter groups; they belong to the old schedule.
_SCHEDULE_KEYS = ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum")


class Checkpointer:
    """Writes ``OUT/best`` and ``OUT/last`` (rank 0 only: ``enabled``) and reads ``--resume`` state back.

    It saves what it is given: the trainer hands it the model, config.json
    and the training state (its :class:`~zoo.train.state.RunState`'s, the
    optimizer's, the callbacks').
    """

    def __init__(self, out: Path | None, *, enabled: bool = True, metrics_format: str = "jsonl") -> None:
        self.out = out
        self.enabled = enabled and out is not None
        self.metrics_format = metrics_format

    # -- writing ---------------------------------------------------------------

    def save_best(self, model: Any, config: Mapping[str, Any]) -> None:
        """``best/``: the weights of ``model`` (the trained ones, or averaged ones the caller swapped in)."""
        from zoo.checkpoint import save_checkpoint

        with self._writing():
            save_checkpoint(self.out / "best", model, dict(config))

    def save_last(self, model: Any, config: Mapping[str, Any], training_state: Mapping[str, Any],
                  history: list[Mapping[str, Any]]) -> None:
        """``last/`` with ``training_state`` (what --resume needs), and the metrics files."""
        from zoo.checkpoint import save_checkpoint
        from zoo.train.metrics import write_history

        with self._writing():
            save_checkpoint(self.out / "last", model, dict(config), training_state=dict(training_state))
            if self.metrics_format != "none":
                write_history(self.out, [dict(r) for r in history], self.metrics_format)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise CheckpointError(
                f"could not write the checkpoint under {str(self.out)!r}: {reason}; free some space or pick"
                " another --out (the previous checkpoint is intact)"
            ) from None

    # -- reading ---------------------------------------------------------------

    @staticmethod
    def read(path: str | Path, model: Any, class_names: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The training state and config of ``path``, after checking they fit this run."""
        from zoo.checkpoint import load_training_state
        from zoo.io import load_config

        path = Path(path)
        config = load_config(path)
        info = model_info(model)
        if info and config.get("architecture") != info.name:
            raise CheckpointError(
                f"cannot resume from {str(path)!r}: it holds a {config.get('architecture')} but this run trains"
                f" a {info.name}; pass the same architecture or drop --resume"
            )
        if int(config.get("num_classes", -1)) != len(class_names):
            raise CheckpointError(
                f"cannot resume from {str(path)!r}: it has {config.get('num_classes')} classes but the data has"
                f" {len(class_names)}; use the same data or drop --resume"
            )
        if list(config.get("class_names", [])) != list(class_names):
            raise CheckpointError(f"cannot resume from {str(path)!r}: its class names differ from the data's")
        state = load_training_state(path)
        if state is None:
            raise CheckpointError(
                f"{str(path)!r} has no training state to resume from; resume from OUT/last, not OUT/best"
            )
        return state, config

    @staticmethod
    def load_weights(path: str | Path, model: Any) -> None:
        from zoo.io import load_state_dict

        state = load_state_dict(path)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"weights in {str(path)!r} do not fit this model: {detail_line(exc)}") from None


def restore_optimizer(optimizer: Any, wanted: str, state: Mapping[str, Any], source: str) -> None:
    """Load the optimizer's state, keeping this run's hyperparameters (before the schedule is built)."""
    saved = state.get("optimizer_name")
    if saved and saved != wanted:
        raise ZooError(
            f"cannot resume from {source!r} with --optimizer {wanted}: it was trained with {saved}, whose state"
            f" does not carry over; resume with --optimizer {saved}, or start a new run from its weights"
            f" (zoo finetune {source})"
        )
    configured = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"cannot resume the optimizer from {source!r}: {exc}") from None
    for group, hyper in zip(optimizer.param_groups, configured):
        for key in _SCHEDULE_KEYS:
            group.pop(key, None)
        group.update(hyper)


def check_position(steps: int, state: Mapping[str, Any], source: str) -> None:
    """A mid-epoch checkpoint resumes only with the same batches per epoch (``steps``)."""
    position = state.get("position")
    if position is not None and int(state.get("steps_per_epoch", steps)) != steps:
        raise ZooError(
            f"cannot resume from {source!r}: it stopped in the middle of epoch {int(state['epoch']) + 1} with"
            f" {state.get('steps_per_epoch')} batches per epoch, and this run has {steps}; resume with the same"
            " data and --batch-size"
        )


def check_epochs_left(state: Mapping[str, Any], epochs: int, source: str) -> None:
    """Resuming a run that has trained ``epochs`` already is refused: there is nothing to do."""
    done = int(state.get("epoch", 0))
    if done >= epochs:
        raise NothingToResumeError(
            f"nothing to resume: {source!r} has trained {done} epoch{'s' if done != 1 else ''} and --epochs {epochs}"
            f" asks for no more; pass --epochs N with N > {done} to train further"
        )


def fast_forward(scheduler: Any, steps: int) -> None:
    """Step a freshly built schedule to where the checkpoint stopped."""
    if scheduler is None or steps <= 0:
        return
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "step() before optimizer.step()": intended here
        for _ in range(steps):
            scheduler.step()


def restore_rng(state: Mapping[str, Any]) -> None:
    """The global random generators as the checkpoint left them (dropout, mixup draws)."""
    import torch

    if state.get("torch_rng") is not None:
        torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(list(state["cuda_rng"]))
        except RuntimeError:
            pass  # another GPU count: the loop's own generators still fix the data order


def config_for(trainer: "Trainer", metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """config.json for the trainer's current model: class names, mean/std, input size, train args, metrics."""
    from zoo.checkpoint import make_config
    from zoo.data.transforms import format_augment

    train_args = trainer.config.to_dict()
    train_args["augment"] = format_augment(trainer.augs)
    train_args["task"] = trainer.task.name
    if trainer.data_root:
        train_args["data"] = trainer.data_root
    train_args["world_size"] = trainer.dist.world_size
    return make_config(trainer.model, class_names=trainer.class_names, mean=trainer.mean, std=trainer.std,
                       input_size=trainer.input_size, train_args=train_args, metrics=dict(metrics or {}),
                       **trainer.task.config_entries(), **trainer.extra_config)
