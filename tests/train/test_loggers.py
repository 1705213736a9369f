"""--logger: TensorBoard and MLflow runs, read back with each library's own reader, match metrics.jsonl."""

from __future__ import annotations

import json
import sys

import pytest

from zoo.errors import ZooError
from zoo.testing import make_image_folder
from zoo.train import fit

FAST = dict(progress=False, plot=False, epochs=3, lr=0.05, batch_size=4, seed=0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("imgs"), ("a", "b"), per_class=6, size=32)


@pytest.fixture(scope="module")
def tracked(folder, tmp_path_factory):
    """One run logged to both trackers; MLflow into a plain file store (no SQLite set-up in the test)."""
    out, store = tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("mlruns")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        result = fit("net", str(folder), out=out, loggers=("tensorboard", "mlflow"), tracking_uri=store.as_uri(),
                     **FAST)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return result, out, store, rows


def test_tensorboard_holds_the_epoch_metrics_steps_and_options(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result, out, _, rows = tracked
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] and rows[-1]["val_acc"] > 0.5  # it learns
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        logged = events.Scalars(key)
        assert [e.step for e in logged] == [r["epoch"] for r in rows]
        assert [e.value for e in logged] == pytest.approx([r[key] for r in rows], rel=1e-6)
    steps = events.Scalars("step/train_loss")
    assert len(steps) == 3 * 3 and steps[-1].step == 9  # 10 training images in batches of 4, every step
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")  # the HPARAMS dashboard
    assert "options/text_summary" in events.Tags()["tensors"]


def test_mlflow_holds_metrics_params_and_the_best_checkpoint(tracked):
    from mlflow.tracking import MlflowClient

    result, out, store, rows = tracked
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        client = MlflowClient(tracking_uri=store.as_uri())
        run = client.search_runs([client.get_experiment_by_name("zoo").experiment_id])[0]
        history = client.get_metric_history(run.info.run_id, "val_loss")
        artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "best")]
        artifacts += [a.path for a in client.list_artifacts(run.info.run_id)]
    assert [m.step for m in history] == [r["epoch"] for r in rows]
    assert [m.value for m in history] == pytest.approx([r["val_loss"] for r in rows], rel=1e-9)
    assert run.data.params["lr"] == "0.05" and run.data.params["model"] == "net"
    assert run.info.status == "FINISHED" and run.info.run_name == out.name
    assert {"best/model.safetensors", "best/config.json", "metrics.jsonl"} <= set(artifacts)


def test_an_unreachable_mlflow_costs_one_warning(folder, tmp_path, capsys):
    result = fit("net", str(folder), out=tmp_path, loggers=("mlflow",), tracking_uri="http://127.0.0.1:9",
                 **{**FAST, "epochs": 1})
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "cannot be reached" in err and "the run goes on" in err
    assert (tmp_path / "metrics.jsonl").exists() and result.best_path is not None


def test_a_tracker_not_installed_names_the_pip_command(folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ZooError, match=r"^--logger tensorboard needs the tensorboard package: pip install 'zoo\[tensorboard\]'$"):
        fit("net", str(folder), loggers=("tensorboard",), **FAST)
    with pytest.raises(ZooError, match="unknown --logger 'wandb'"):
        fit("net", str(folder), loggers=("wandb",), **FAST)
