"""Experiment trackers as training callbacks: TensorBoard event files and MLflow runs.

``zoo train --logger tensorboard --logger mlflow`` adds them beside the
run's own files (metrics.jsonl/csv, curves.png). Each writes

* the metrics of every epoch (the keys of metrics.jsonl, at step = epoch);
* the running training loss and the learning rate every few steps
  (``step/train_loss``, ``step/lr``, at step = the global batch count);
* the run's options as hyperparameters;
* MLflow only: the best checkpoint directory as the run's artifact ``best``,
  and curves.png and metrics.jsonl/csv beside it.

MLflow's default store is ``./mlruns/mlflow.db`` (SQLite, with the artifacts
under ``./mlruns``); ``--tracking-uri`` names another (a server, or any
store URI MLflow takes).

A tracker whose package is missing stops the run before it starts, with the
pip command; an MLflow store that cannot be reached costs one warning, and
the run goes on with its local files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from zoo.errors import ZooError
from zoo.train.callbacks import Callback
from zoo.train.config import LOGGERS

if TYPE_CHECKING:
    from zoo.train.trainer import Trainer, TrainResult

POINTS_PER_EPOCH = 50  # step-level points per epoch at most (each read of the running loss syncs a GPU)


def _warn(text: str) -> None:
    print(f"zoo: warning: {text}", file=sys.stderr, flush=True)


def _need(module: str, logger: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ZooError(f"--logger {logger} needs the {extra} package: pip install 'zoo[{extra}]'") from None


def hyperparameters(trainer: "Trainer") -> dict[str, Any]:
    """The run's options as flat scalars (lists and tables as JSON text), for a tracker's parameter table."""
    from zoo.registry import model_info

    info = model_info(trainer.model)
    args = {**trainer.config.to_dict(), "task": trainer.task.name, "model": info.name if info else None}
    out: dict[str, Any] = {}
    for key, value in args.items():
        if value is None or isinstance(value, (bool, int, float, str)):
            out[key] = "none" if value is None else value
        else:
            out[key] = json.dumps(value, sort_keys=True, default=str)
    return out


def numbers(row: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of a metrics row, without its epoch counter."""
    return {k: float(v) for k, v in row.items() if k != "epoch" and isinstance(v, (int, float))
            and not isinstance(v, bool)}


class StepLogger(Callback):
    """The step-level part both trackers share: every few steps, the running loss and the learning rate."""

    def step_every(self, trainer: "Trainer") -> int:
        return max(1, len(trainer.train_batches) // POINTS_PER_EPOCH)

    def on_batch_end(self, trainer: "Trainer", epoch: int, step: int, stats: Any) -> None:
        if step % self.step_every(trainer) or not stats.seen:
            return
        global_step = (epoch - 1) * len(trainer.train_batches) + step
        self.log_step({"step/train_loss": float(stats.loss_sum) / stats.seen,
                       "step/lr": float(trainer.optimizer.param_groups[0]["lr"])}, global_step)

    def log_step(self, values: dict[str, float], step: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class TensorBoardLogger(StepLogger):
    """Event files under ``log_dir`` (``OUT/tensorboard``), through ``torch.utils.tensorboard``."""

    def __init__(self, log_dir: str | Path) -> None:
        _need("tensorboard", "tensorboard", "tensorboard")
        self.log_dir = Path(log_dir)
        self.writer = None

    def on_fit_start(self, trainer: "Trainer") -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        self.writer = SummaryWriter(str(self.log_dir))
        params = hyperparameters(trainer)
        # The HPARAMS dashboard's record, in this run's own file (add_hparams would start another run).
        for summary in hparams(params, {"val_loss": 0.0, "train_loss": 0.0}):
            self.writer.file_writer.add_summary(summary)
        self.writer.add_text("options", json.dumps(params, indent=1, sort_keys=True))

    def log_step(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def on_epoch_end(self, trainer: "Trainer", epoch: int, metrics: dict[str, Any]) -> None:
        for key, value in numbers(metrics).items():
            self.writer.add_scalar(key, value, epoch)
        self.writer.flush()

    def on_fit_end(self, trainer: "Trainer", result: "TrainResult") -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class MLflowLogger(StepLogger):
    """A run in an MLflow store: ``tracking_uri``, or the local ``./mlruns`` by default (see
    :func:`default_tracking_uri`)."""

    def __init__(self, tracking_uri: str | None = None, experiment: str = "zoo", run_name: str | None = None) -> None:
        _need("mlflow", "mlflow", "mlflow")
        self.tracking_uri = tracking_uri or default_tracking_uri()
        self.experiment, self.run_name = experiment, run_name
        self.client = self.run_id = None

    def _guard(self, what: str, action: Any) -> None:
        """Run ``action``; on any failure warn once and stop logging, so the run itself goes on."""
        if self.client is None:
            return
        try:
            action()
        except Exception as exc:  # a store that went away must not end the training
            _warn(f"MLflow at {self.tracking_uri} failed to {what} ({type(exc).__name__}: {exc});"
                  " the run goes on without it, its local files are written")
            self.client = None

    def on_fit_start(self, trainer: "Trainer") -> None:
        from mlflow.tracking import MlflowClient

        def start() -> None:
            found = self.client.get_experiment_by_name(self.experiment)
            experiment_id = found.experiment_id if found else self.client.create_experiment(self.experiment)
            name = self.run_name or (trainer.out.name if trainer.out else None)
            self.run_id = self.client.create_run(experiment_id, run_name=name).info.run_id
            self._log_params(hyperparameters(trainer))

        problem = unreachable(self.tracking_uri)
        if problem:
            _warn(f"MLflow at {self.tracking_uri} cannot be reached ({problem}); the run goes on without it,"
                  " its local files are written")
            return
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self._guard("start a run", start)

    def _log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:500]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 parameters per call
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def _log_metrics(self, values: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._guard("log metrics", lambda: self.client.log_batch(
            self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()]))

    def log_step(self, values: dict[str, float], step: int) -> None:
        self._log_metrics(values, step)

    def on_epoch_end(self, trainer: "Trainer", epoch: int, metrics: dict[str, Any]) -> None:
        self._log_metrics(numbers(metrics), epoch)

    def on_fit_end(self, trainer: "Trainer", result: "TrainResult") -> None:
        if result.best_path is not None and Path(result.best_path).is_dir():
            self._guard("store the best checkpoint",
                        lambda: self.client.log_artifacts(self.run_id, str(result.best_path), "best"))
        for name in ("curves.png", "metrics.jsonl", "metrics.csv"):  # the run's own files, beside it
            file = trainer.out / name if trainer.out is not None else None
            if file is not None and file.is_file():
                self._guard(f"store {name}", lambda file=file: self.client.log_artifact(self.run_id, str(file)))
        status = "KILLED" if result.stopped == "interrupted" else "FINISHED"
        self._guard("end the run", lambda: self.client.set_terminated(self.run_id, status))


def default_tracking_uri() -> str:
    """``./mlruns/mlflow.db``, an SQLite store (MLflow 3 refuses new plain-file stores); the artifacts go
    beside it under ``./mlruns``, MLflow's own default artifact root."""
    folder = Path("mlruns").resolve()
    folder.mkdir(exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def unreachable(uri: str, timeout: float = 3.0) -> str | None:
    """Why an http(s) tracking server cannot be reached (one connection attempt), or None.

    MLflow's own client retries for minutes before it gives up; a run should not wait that long to learn
    that its tracker is down.
    """
    import socket
    from urllib.parse import urlparse

    parts = urlparse(uri)
    if parts.scheme not in ("http", "https"):
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "localhost", port), timeout=timeout):
            return None
    except (OSError, ValueError) as exc:
        return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def make_loggers(names: Iterable[str], out: str | Path | None, tracking_uri: str | None = None) -> list[Callback]:
    """The tracker callbacks of ``--logger`` names (each once, in the order given)."""
    made: list[Callback] = []
    for name in dict.fromkeys(names):
        if name == "tensorboard":
            made.append(TensorBoardLogger(Path(out or "runs") / "tensorboard"))
        elif name == "mlflow":
            made.append(MLflowLogger(tracking_uri, run_name=Path(out).name if out else None))
        else:
            raise ZooError(f"unknown --logger {name!r}; choose from {', '.join(LOGGERS)}")
    return made
