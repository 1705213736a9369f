"""Resume: a Ctrl-C in the middle of an epoch, resumed, equals a run never interrupted; one rule for changes."""

from __future__ import annotations

import io
import os
import signal

import pytest
import torch

from zoo.checkpoint import load_checkpoint
from zoo.data import load_image_data
from zoo.errors import ZooError
from zoo.testing import make_image_folder
from zoo.train import Callback, ProgressReporter, Trainer, fit

FAST = dict(progress=False, plot=False)
SCHEDULERS = ["none", "step", "multistep", "cosine", "onecycle"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = make_image_folder(tmp_path_factory.mktemp("imgs"), ("red", "green", "blue"), per_class=24, size=32,
                             split=True, val_per_class=6)
    return load_image_data(root, (3, 32, 32))


class CtrlC(Callback):
    """Sends a real SIGINT to this process after step ``step`` of epoch ``epoch``."""

    def __init__(self, epoch: int, step: int) -> None:
        self.epoch, self.step = epoch, step

    def on_batch_end(self, trainer, epoch, step, stats):
        if (epoch, step) == (self.epoch, self.step):
            os.kill(os.getpid(), signal.SIGINT)


def _weights(path):
    model, _ = load_checkpoint(path)
    return model.state_dict()


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_ctrl_c_mid_epoch_then_resume_equals_an_uninterrupted_run(data, tmp_path, scheduler):
    # 72 training images in batches of 16: 5 steps per epoch; the interrupt lands after step 2 of epoch 2.
    opts = dict(epochs=3, batch_size=16, lr=0.05, scheduler=scheduler, step_size=1, milestones=(2,),
                augment="crop=2,flip", **FAST)
    full = fit("net_dropout", data, out=tmp_path / "full", **opts)
    cut = fit("net_dropout", data, out=tmp_path / "cut", callbacks=[CtrlC(2, 2)], **opts)
    assert cut.stopped == "interrupted" and len(cut.history) == 1
    _, config = load_checkpoint(tmp_path / "cut" / "last")
    assert config["metrics"]["interrupted_at"] == {"epoch": 2, "step": 2}
    resumed = fit("net_dropout", data, out=tmp_path / "cut", resume=str(tmp_path / "cut" / "last"), **opts)
    assert resumed.stopped == "completed"
    assert _same(_weights(tmp_path / "full" / "last"), _weights(tmp_path / "cut" / "last"))
    for a, b in zip(full.history, resumed.history, strict=True):
        assert (a["train_loss"], a["train_acc"], a["val_loss"], a["lr"]) == (b["train_loss"], b["train_acc"],
                                                                             b["val_loss"], b["lr"])


def test_request_stop_from_a_callback_resumes_exactly_with_a_streamed_folder(data, tmp_path):
    class Stop(Callback):
        def on_batch_end(self, trainer, epoch, step, stats):
            if (epoch, step) == (1, 3):
                trainer.request_stop()

    opts = dict(epochs=2, batch_size=16, lr=0.05, scheduler="onecycle", cache=False, workers=0, **FAST)
    root = data.root
    fit("net", str(root), out=tmp_path / "full", **opts)
    fit("net", str(root), out=tmp_path / "cut", callbacks=[Stop()], **opts)
    fit("net", str(root), out=tmp_path / "cut", resume=str(tmp_path / "cut" / "last"), **opts)
    assert _same(_weights(tmp_path / "full" / "last"), _weights(tmp_path / "cut" / "last"))


def _lr_trace(data, tmp_path, **opts):
    seen = []

    class Trace(Callback):
        def on_batch_end(self, trainer, epoch, step, stats):
            seen.append(trainer.optimizer.param_groups[0]["lr"])

    result = fit("net", data, callbacks=[Trace()], batch_size=16, lr=0.1, **FAST, **opts)
    return result, seen


def test_extending_a_finished_cosine_run_replays_the_longer_schedule(data, tmp_path):
    fit("net", data, out=tmp_path, epochs=2, batch_size=16, lr=0.1, scheduler="cosine", **FAST)
    _, lrs = _lr_trace(data, tmp_path, out=tmp_path, epochs=4, scheduler="cosine", resume=str(tmp_path / "last"))
    _, reference = _lr_trace(data, tmp_path, epochs=4, scheduler="cosine")
    assert len(lrs) == 10 and lrs[0] > 0.01  # not stuck at the end of the old 2-epoch curve
    assert lrs == pytest.approx(reference[10:], rel=1e-9)


@pytest.mark.parametrize("new", ["onecycle", "cosine"])
def test_adding_a_scheduler_on_resume_follows_the_new_schedule_from_that_step(data, tmp_path, new):
    fit("net", data, out=tmp_path, epochs=1, batch_size=16, lr=0.1, **FAST)
    result, lrs = _lr_trace(data, tmp_path, out=tmp_path, epochs=3, scheduler=new, resume=str(tmp_path / "last"))
    _, reference = _lr_trace(data, tmp_path, epochs=3, scheduler=new)
    assert result.stopped == "completed"
    assert lrs == pytest.approx(reference[5:], rel=1e-9)


def test_another_optimizer_on_resume_is_refused_in_one_line(data, tmp_path):
    fit("net", data, out=tmp_path, epochs=1, batch_size=16, optimizer="sgd", **FAST)
    with pytest.raises(ZooError, match=r"trained with sgd.*--optimizer sgd") as info:
        fit("net", data, out=tmp_path, epochs=2, batch_size=16, optimizer="adamw", resume=str(tmp_path / "last"),
            **FAST)
    assert "\n" not in str(info.value)


def test_a_mid_epoch_checkpoint_needs_the_same_batches_per_epoch(data, tmp_path):
    fit("net", data, out=tmp_path, epochs=2, batch_size=16, callbacks=[CtrlC(1, 2)], **FAST)
    with pytest.raises(ZooError, match="same data and --batch-size"):
        fit("net", data, out=tmp_path, epochs=2, batch_size=8, resume=str(tmp_path / "last"), **FAST)


def test_progress_on_a_pipe_is_one_line_per_epoch(data):
    stream = io.StringIO()  # not a terminal, like '2>&1 | cat' or CI
    reporter = ProgressReporter(stream=stream)
    trainer = Trainer("net", data, epochs=2, batch_size=16, plot=False, progress=False, callbacks=[reporter])
    trainer.fit()
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert "img/s" in lines[0] and "val loss" in lines[0]


def test_normalize_model_on_a_plain_module_with_streamed_data_is_a_clear_error(data):
    # It used to reach compute_mean_std(None) and fail deep inside.
    from torch import nn

    plain = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 3))
    streamed = load_image_data(data.root, (3, 32, 32), cache=False)
    with pytest.raises(ZooError, match="normalize='model'.*pass mean= and std="):
        Trainer(plain, streamed, normalize="model", epochs=1, **FAST).setup()
    trainer = Trainer(plain, streamed, normalize="dataset", epochs=1, **FAST)
    trainer.setup()  # streamed data gets its statistics from a sample of the images
    assert len(trainer.mean) == 3 and all(s > 0 for s in trainer.std)


class StepCounter(Callback):
    """A callback with state: it counts optimizer steps, and a resumed run goes on counting."""

    def __init__(self) -> None:
        self.steps = 0

    def after_optimizer_step(self, trainer, batch):
        self.steps += 1

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = state["steps"]


def test_resume_is_bit_identical_with_accumulation_ema_and_mixup(data, tmp_path):
    # 5 batches an epoch in windows of 2 (1-2, 3-4, 5): the stop after step 3 of epoch 2 lands inside a window,
    # with summed gradients, the average and the mixup draws all mid-way.
    opts = dict(epochs=2, batch_size=16, lr=0.05, scheduler="onecycle", accumulate=2, ema=0.8, mixup=0.4,
                augment="flip", **FAST)
    full_counter, cut_counter, resumed_counter = StepCounter(), StepCounter(), StepCounter()
    full = fit("net_dropout", data, out=tmp_path / "full", callbacks=[full_counter], **opts)
    fit("net_dropout", data, out=tmp_path / "cut", callbacks=[cut_counter, CtrlC(2, 3)], **opts)
    assert cut_counter.steps == 3 + 1  # epoch 1's three, and 1-2 of epoch 2
    resumed = fit("net_dropout", data, out=tmp_path / "cut", resume=str(tmp_path / "cut" / "last"),
                  callbacks=[resumed_counter], **opts)
    assert resumed_counter.steps == full_counter.steps == 6
    for which in ("last", "best"):
        assert _same(_weights(tmp_path / "full" / which), _weights(tmp_path / "cut" / which)), which
    keys = ("train_loss", "train_acc", "val_loss", "ema_val_loss", "ema_val_acc", "lr")
    assert [[row[k] for k in keys] for row in full.history] == [[row[k] for k in keys] for row in resumed.history]
    assert full.best_metrics["val_acc"] > 0.5  # three classes: chance is a third
