"""The run's state: one record that the loop, the checkpointer and callbacks read and change.

Lightning's loops each own their progress and serialise it; here the whole
loop's progress is one :class:`RunState`. The epoch loop advances it, the
best-checkpoint rule updates it (:meth:`RunState.track`), callbacks read it
(``trainer.state``) and may set ``stop_requested``, and the checkpointer
saves its :meth:`state_dict` beside the optimizer's. Nothing else writes
these fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


@dataclass
class RunState:
    """Where a run stands.

    ``epoch`` is the last completed epoch (1-based; 0 before the first);
    ``step`` counts the batches trained over the whole run; ``position`` is
    set while a mid-epoch checkpoint has not been caught up with (``step``
    within the epoch, the running sums ``stats`` and the augmentation
    generator's state ``augment_rng``).
    """

    epoch: int = 0
    step: int = 0
    position: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    best_value: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0  # epochs since the monitored metric last improved (the patience count)
    stop_requested: bool = False  # set by Ctrl-C or trainer.request_stop(): stop at the next step boundary

    def start_step(self, epoch: int) -> int:
        """The batch ``epoch`` starts after: 0, or where a mid-epoch checkpoint stopped."""
        return int(self.position["step"]) if self.position and epoch == self.epoch + 1 else 0

    def finish_epoch(self, row: Mapping[str, Any]) -> None:
        """Record a completed epoch's metrics."""
        self.epoch, self.position = int(row["epoch"]), None
        self.history.append(dict(row))

    def track(self, row: dict[str, Any], monitor: str, variants: Iterable[str] = ()) -> tuple[bool, str]:
        """Whether ``row`` improves on the best so far, and which weights scored it.

        ``monitor`` names the metric (a loss is better lower); each name in
        ``variants`` (``"ema"``) may add its own score as ``NAME_<monitor>``,
        and the better one counts. Returns ``(improved, variant)`` with ``""``
        for the trained weights themselves; the row gets ``best_weights`` when
        a variant won.
        """
        lower = monitor.endswith("loss")
        scores = {"": row[monitor]}
        scores.update({v: row[f"{v}_{monitor}"] for v in variants if f"{v}_{monitor}" in row})
        variant = (min if lower else max)(scores, key=lambda k: scores[k])
        value = float(scores[variant])
        if variant:
            row["best_weights"] = variant
        better = self.best_value is None or (value < self.best_value if lower else value > self.best_value)
        if better:
            self.best_value, self.best_epoch, self.bad_epochs = value, int(row["epoch"]), 0
        else:
            self.bad_epochs += 1
        return better, variant

    def best_row(self) -> dict[str, Any]:
        """The metrics of the best epoch ({} before one)."""
        return next((dict(r) for r in self.history if r["epoch"] == self.best_epoch), {})

    def state_dict(self) -> dict[str, Any]:
        """Plain values for a checkpoint (the stop flag is not saved: a resumed run goes on)."""
        return {"epoch": self.epoch, "step": self.step, "position": dict(self.position) if self.position else None,
                "history": [dict(r) for r in self.history], "best_value": self.best_value,
                "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict` (older checkpoints lack ``step``: it is recomputed)."""
        self.epoch = int(state["epoch"])
        self.history = [dict(r) for r in state.get("history", [])]
        self.best_value = state.get("best_value")
        self.best_epoch = state.get("best_epoch")
        self.bad_epochs = int(state.get("bad_epochs", 0))
        self.position = dict(state["position"]) if state.get("position") else None
        steps = state.get("steps_per_epoch") or 0
        self.step = int(state.get("step", self.epoch * steps + (self.position or {}).get("step", 0)))
        self.stop_requested = False


def resolve_monitor(monitor: str, row: Mapping[str, Any], task_monitor: str) -> str:
    """The metric that picks the best checkpoint: ``monitor``, its train_ twin without validation, or the task's."""
    if monitor in row:
        return monitor
    twin = monitor.replace("val_", "train_")
    if twin in row:
        return twin
    return task_monitor if task_monitor in row else "train_loss"
