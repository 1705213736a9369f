"""The loop's events: their order, the error path, gradient accumulation, EMA, mixup, and the process left as found."""

from __future__ import annotations

import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from zoo.errors import ZooError
from zoo.train import Callback, ProgressReporter, Trainer, fit
from zoo.train.callbacks import EVENTS, Batch
from zoo.train.extras import MixUpCutMix

FAST = dict(progress=False, plot=False)


def _separable(n=48, seed=0):
    """Two Gaussian blobs in 4-D: a linear model learns them in a few steps."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 4, generator=g) + (y[:, None] * 2 - 1) * 1.5
    return x, y


class Recorder(Callback):
    """Every event, in order, with epoch and step where they have one."""

    def __init__(self):
        self.seen = []

    def on_fit_start(self, trainer):
        self.seen.append(("on_fit_start",))

    def on_epoch_start(self, trainer, epoch):
        self.seen.append(("on_epoch_start", epoch))

    def before_batch(self, trainer, batch):
        self.seen.append(("before_batch", batch.step))

    def after_loss(self, trainer, batch):
        self.seen.append(("after_loss", batch.step))

    def before_optimizer_step(self, trainer, batch):
        self.seen.append(("before_optimizer_step", batch.step))

    def after_optimizer_step(self, trainer, batch):
        self.seen.append(("after_optimizer_step", batch.step))

    def on_batch_end(self, trainer, epoch, step, stats):
        self.seen.append(("on_batch_end", epoch, step))

    def on_validation_end(self, trainer, epoch, metrics):
        self.seen.append(("on_validation_end", epoch))

    def on_epoch_end(self, trainer, epoch, metrics):
        self.seen.append(("on_epoch_end", epoch))

    def on_exception(self, trainer, error):
        self.seen.append(("on_exception",))

    def on_fit_end(self, trainer, result):
        self.seen.append(("on_fit_end",))


def test_the_recorder_covers_every_event():
    assert all(getattr(Recorder, e) is not getattr(Callback, e) for e in EVENTS)


def test_every_event_is_called_in_order():
    x, y = _separable(16)
    recorder = Recorder()
    # 12 training samples in batches of 8: steps 1 and 2; accumulation joins them into one optimizer step.
    Trainer(nn.Linear(4, 2), (x[:12], y[:12]), (x[12:], y[12:]), epochs=2, batch_size=8, accumulate=2,
            callbacks=[recorder], **FAST).fit()
    batch1 = [("before_batch", 1), ("after_loss", 1), ("on_batch_end", 1, 1)]
    batch2 = [("before_batch", 2), ("after_loss", 2), ("before_optimizer_step", 2), ("after_optimizer_step", 2),
              ("on_batch_end", 1, 2)]
    epoch1 = [("on_epoch_start", 1), *batch1, *batch2, ("on_validation_end", 1), ("on_epoch_end", 1)]
    assert recorder.seen[:len(epoch1) + 1] == [("on_fit_start",), *epoch1]
    assert recorder.seen[-1] == ("on_fit_end",) and ("on_exception",) not in recorder.seen
    assert len(recorder.seen) == 1 + 2 * len(epoch1) + 1


def test_an_error_inside_fit_runs_on_exception_and_on_fit_end_and_closes_the_bar():
    x, y = _separable(16)
    seen = []

    class Boom(Callback):
        def on_batch_end(self, trainer, epoch, step, stats):
            if step == 2:
                raise RuntimeError("boom")

        def on_exception(self, trainer, error):
            seen.append(("exception", str(error)))

        def on_fit_end(self, trainer, result):
            seen.append(("end", result.stopped))

    reporter = ProgressReporter(stream=io.StringIO(), bars=True)
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        Trainer(nn.Linear(4, 2), (x, y), epochs=2, batch_size=4, threads=before + 1, callbacks=[reporter, Boom()],
                **FAST).fit()
    assert seen == [("exception", "boom"), ("end", "failed")]
    assert reporter.bar is None  # closed, not left drawn
    assert torch.get_num_threads() == before


def test_accumulating_two_half_batches_equals_one_full_batch():
    x, y = _separable(32)
    runs = {}
    for name, opts in {"full": dict(batch_size=16), "accumulated": dict(batch_size=8, accumulate=2)}.items():
        torch.manual_seed(0)
        model = nn.Linear(4, 2)
        runs[name] = fit(model, (x, y), epochs=2, lr=0.5, momentum=0.0, **opts, **FAST)
    full, acc = (r.model.state_dict() for r in (runs["full"], runs["accumulated"]))
    assert all(torch.allclose(full[k], acc[k], atol=1e-6) for k in full)
    assert runs["accumulated"].history[-1]["train_acc"] > 0.9  # and it learnt


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from zoo.data import load_image_data
    from zoo.testing import make_image_folder

    root = make_image_folder(tmp_path_factory.mktemp("imgs"), ("red", "green"), per_class=12, size=32, split=True,
                             val_per_class=4)
    return load_image_data(root, (3, 32, 32))


def test_under_ddp_accumulation_all_reduces_once_a_window():
    from types import SimpleNamespace

    from zoo.train.extras import GradientAccumulation

    trainer = SimpleNamespace(net=SimpleNamespace(require_backward_grad_sync=True))  # what DDP's no_sync() sets
    acc, synced = GradientAccumulation(3), []
    for step in range(1, 8):  # 7 batches: windows 1-3, 4-6, 7
        acc.before_batch(trainer, Batch(1, step, 7, None, None, None))
        synced.append(trainer.net.require_backward_grad_sync)
    assert synced == [False, False, True, False, False, True, True]


def test_ema_best_holds_the_average_when_it_validates_better(images, tmp_path):
    from zoo.checkpoint import load_checkpoint

    class RawLoses(Callback):  # runs after the EMA callback: the trained weights score worse on purpose
        def on_validation_end(self, trainer, epoch, metrics):
            metrics["val_acc"] = 0.0

    trainer = Trainer("net", images, out=str(tmp_path), epochs=1, batch_size=8, lr=0.05, ema=0.5,
                      callbacks=[RawLoses()], **FAST)
    row = trainer.fit().history[-1]
    assert row["best_weights"] == "ema" and row["ema_val_acc"] > 0.5  # 2 classes: the average learnt too
    ema = next(cb for cb in trainer.callbacks if type(cb).__name__ == "WeightAverage").averaged.module.state_dict()
    best, _ = load_checkpoint(tmp_path / "best")
    last, _ = load_checkpoint(tmp_path / "last")
    best, last, raw = best.state_dict(), last.state_dict(), trainer.model.state_dict()
    assert all(torch.equal(best[k], ema[k]) and torch.equal(last[k], raw[k]) for k in raw)
    assert any(not torch.equal(best[k], last[k]) for k in raw)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 9), classes=st.integers(2, 6), mixup=st.sampled_from([0.0, 0.2, 1.0]),
       cutmix=st.sampled_from([0.0, 0.5, 1.0]), seed=st.integers(0, 2**16))
def test_mixed_targets_are_distributions(n, classes, mixup, cutmix, seed):
    if not (mixup or cutmix):
        mixup = 0.4
    torch.manual_seed(seed)
    x = torch.rand(n, 3, 8, 8)
    y = torch.randint(0, classes, (n,))
    batch = Batch(1, 1, 1, x, y, y)
    MixUpCutMix(classes, mixup, cutmix).before_batch(None, batch)
    assert batch.x.shape == x.shape and batch.target.shape == (n, classes)
    assert torch.allclose(batch.target.sum(1), torch.ones(n)) and (batch.target >= 0).all()
    assert torch.equal(batch.labels, y)  # accuracy still counts the batch's own labels


@pytest.mark.parametrize("opts, message", [
    (dict(mixup=0.2, loss="mse"), "soft-target loss"),
    (dict(cutmix=1.0, classes=1), "two classes at least"),
    (dict(accumulate=0), "--accumulate must be"),
    (dict(ema=1.5), "--ema must lie between 0 and 1"),
])
def test_refused_options(opts, message):
    classes = opts.pop("classes", 2)
    x, y = torch.rand(8, 4), torch.arange(8) % classes
    with pytest.raises(ZooError, match=message):
        Trainer(nn.Linear(4, 2), (x, y), class_names=[str(i) for i in range(classes)], **opts, **FAST)


def test_mixup_is_refused_for_an_autoencoder():
    from zoo.train import ReconstructionTask

    with pytest.raises(ZooError, match="mixes class labels"):
        Trainer(nn.Linear(4, 4), (torch.rand(8, 4), torch.zeros(8, dtype=torch.long)), class_names=[],
                task=ReconstructionTask(), mixup=0.2, **FAST)


def test_fit_leaves_threads_and_the_global_generator_as_it_found_them():
    x, y = torch.rand(16, 3, 8, 8), torch.arange(16) % 2
    images = torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8)
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(3 * 8 * 8, 2))  # dropout and mixup draw
    torch.manual_seed(123)
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    fit(model, (x, y), epochs=1, batch_size=8, threads=threads + 1, mixup=0.2, **FAST)
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng)
    fit("net", (images, torch.arange(8) % 2), epochs=1, batch_size=8, **FAST)  # a registry name: its initial weights come from a seeded generator of its own
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng)


def test_finetune_leaves_threads_and_the_global_generator_as_it_found_them(images, tmp_path):
    from zoo.transfer.finetune import FinetuneOptions, finetune

    source = fit("net", images, out=tmp_path / "src", epochs=1, batch_size=8, metrics_format="none", **FAST)
    torch.manual_seed(7)
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    result = finetune(str(source.last_path), str(images.root), options=FinetuneOptions(feature_engine="torch"),
                      epochs=1, batch_size=8, threads=threads + 1,
                      out=str(tmp_path / "ft"), metrics_format="none", log=lambda line: None, **FAST)
    assert result.history and torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng)
    with pytest.raises(ZooError, match="mix images, so they need --no-cache-features"):
        finetune(str(source.last_path), str(images.root), options=FinetuneOptions(cache_features=True), mixup=0.2,
                 dry_run=True)
