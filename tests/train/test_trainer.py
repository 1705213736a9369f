"""zoo.train: learning, resume, checkpoints under failure, bad input, the API the transfer code uses."""

from __future__ import annotations

import errno
import json

import pytest
import torch

import zoo
from zoo.checkpoint import load_checkpoint
from zoo.io import load_config
from zoo.errors import CheckpointError, ZooError
from zoo.testing import make_image_folder
from zoo.train import Callback, TrainConfig, Trainer, TrainingDivergedError, evaluate, fit
from zoo.data import load_image_data

FAST = dict(progress=False, plot=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    return make_image_folder(root, ("red", "green", "blue"), per_class=24, size=32, split=True, val_per_class=8)


@pytest.fixture(scope="module")
def data(folder):
    return load_image_data(folder, (3, 32, 32))


@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = fit("net", str(folder), out=out, epochs=6, lr=0.05, batch_size=16, augment="crop=2,flip",
                   scheduler="cosine", progress=False)
    return result, out


def test_training_learns_and_writes_everything(trained):
    result, out = trained
    assert result.val_acc >= 0.9  # chance is 1/3
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert {"best", "last", "metrics.jsonl", "curves.png"} <= {p.name for p in out.iterdir()}
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 7))
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s"} <= set(rows[0])
    config = load_config(out / "best")
    assert config["class_names"] == ["blue", "green", "red"]
    assert config["input_size"] == [3, 32, 32] and len(config["mean"]) == 3
    assert config["train_args"]["augment"] == "crop=2,flip=0.5" and config["metrics"]["val_acc"] >= 0.9
    assert config["versions"]["torch"] == torch.__version__
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_reports_per_class_and_confusion(trained, folder):
    result, out = trained
    ev = evaluate(out / "best", folder)
    assert ev.num_images == 24 and ev.accuracy == pytest.approx(result.best_metrics["val_acc"])
    assert sum(map(sum, ev.confusion)) == 24 and set(ev.per_class_accuracy) == {"blue", "green", "red"}


def test_evaluate_rejects_data_with_unknown_classes(trained, tmp_path):
    _, out = trained
    make_image_folder(tmp_path, ("red", "purple"), per_class=2, size=32)
    with pytest.raises(CheckpointError, match="classes the checkpoint does not know: purple"):
        evaluate(out / "best", tmp_path)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_matches_an_uninterrupted_run(data, tmp_path):
    opts = dict(epochs=4, lr=0.05, batch_size=16, augment="crop=2,flip,jitter", scheduler="onecycle", **FAST)
    full = fit("net", data, out=tmp_path / "full", **opts)

    class StopAfterTwo(Callback):
        def on_epoch_end(self, trainer, epoch, metrics):
            if epoch == 2:
                raise KeyboardInterrupt  # Ctrl-C right after epoch 2 was saved

    cut = fit("net", data, out=tmp_path / "half", callbacks=[StopAfterTwo()], **opts)
    assert cut.stopped == "interrupted" and len(cut.history) == 2
    resumed = fit("net", data, out=tmp_path / "half", resume=str(tmp_path / "half" / "last"), **opts)
    a, b = _weights(full.model), _weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-exact on CPU
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert resumed.history[-1]["val_loss"] == full.history[-1]["val_loss"]


def test_resume_with_more_epochs_continues_the_schedule(data, tmp_path):
    opts = dict(lr=0.05, batch_size=16, scheduler="cosine", **FAST)
    fit("net", data, out=tmp_path, epochs=2, **opts)
    longer = fit("net", data, out=tmp_path, epochs=3, resume=str(tmp_path / "last"), **opts)
    assert [r["epoch"] for r in longer.history] == [1, 2, 3]
    assert longer.history[-1]["lr"] < 1e-6  # cosine over 3 epochs ends at zero


def test_resume_refuses_another_architecture_or_class_count(trained, folder, tmp_path):
    _, out = trained
    with pytest.raises(CheckpointError, match="holds a net but this run trains a some_other_net"):
        _resume_other_arch(out, folder, tmp_path)
    make_image_folder(tmp_path / "two", ("red", "green"), per_class=4, size=32)
    with pytest.raises(CheckpointError, match="3 classes but the data has 2"):
        fit("net", str(tmp_path / "two"), out=tmp_path / "o2", resume=str(out / "last"), epochs=1, **FAST)
    with pytest.raises(CheckpointError, match="no training state"):
        fit("net", str(folder), out=tmp_path / "o3", resume=str(out / "best"), epochs=1, **FAST)


def _resume_other_arch(out, folder, tmp_path):
    # A model that claims another architecture name is enough to trip the check.
    model = zoo.create_model("net", num_classes=3)
    zoo.model_info(model).name = "some_other_net"
    Trainer(model, load_image_data(folder, (3, 32, 32)), out=str(tmp_path / "o1"), resume=str(out / "last"),
            epochs=1, **FAST).fit()


def test_full_disk_while_saving_leaves_the_previous_checkpoint(data, tmp_path, monkeypatch):
    import safetensors.torch

    real = safetensors.torch.save_file
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= 3:  # epoch 1 writes best + last; epoch 2's first write fails
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", failing)
    with pytest.raises(CheckpointError, match="No space left on device"):
        fit("net", data, out=tmp_path, epochs=3, lr=0.05, batch_size=16, **FAST)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no half-written temporary directory
    model, config = load_checkpoint(tmp_path / "last")
    assert config["metrics"]["epoch"] == 1


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    def poison(trainer, epoch):
        if epoch == 2:
            with torch.no_grad():
                trainer.model.fc2.weight.fill_(float("nan"))

    with pytest.raises(TrainingDivergedError, match="NaN/inf at epoch 2.*last good checkpoint \\(epoch 1\\)"):
        fit("net", data, out=tmp_path, epochs=3, batch_size=16, callbacks=[poison], **FAST)
    model, config = load_checkpoint(tmp_path / "last")
    assert config["metrics"]["epoch"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_hard_interrupt_keeps_the_last_finished_epoch(data, tmp_path):
    # A KeyboardInterrupt from inside the loop (a second Ctrl-C) may land mid-step,
    # so nothing half-updated is saved: 'last' stays the checkpoint of epoch 1.
    def interrupt(trainer, epoch):
        if epoch == 2:
            raise KeyboardInterrupt

    result = fit("net", data, out=tmp_path, epochs=5, batch_size=16, callbacks=[interrupt], **FAST)
    assert result.stopped == "interrupted" and result.last_path is not None
    _, config = load_checkpoint(tmp_path / "last")
    assert config["metrics"]["epoch"] == 1 and "interrupted" not in config["metrics"]


def test_missing_device_is_a_clear_error(data):
    missing = "cuda:99" if torch.cuda.is_available() else "cuda"
    with pytest.raises(ZooError, match="not available|does not exist"):
        fit("net", data, device=missing, epochs=1, **FAST)
    with pytest.raises(ZooError, match="unknown device"):
        fit("net", data, device="tpu0", epochs=1, **FAST)


def test_early_stopping(data, tmp_path):
    result = fit("net", data, out=tmp_path, epochs=30, lr=0.05, batch_size=16, early_stop=2, **FAST)
    assert result.stopped == "early_stop" and len(result.history) < 30
    assert result.best_epoch == len(result.history) - 2


@pytest.mark.parametrize(
    "options",
    [
        dict(loss="nll", label_smoothing=0.1, optimizer="adam", lr=3e-3, scheduler="step", step_size=1),
        dict(loss="mse", optimizer="adamw", lr=1e-2, weight_decay=1e-2, scheduler="multistep", milestones=(2,)),
        dict(l2=1e-3, l1=1e-4, clip_grad=1.0, momentum=0.0, lr=0.1, metrics_format="csv"),
    ],
)
def test_losses_optimizers_and_schedules_learn(data, tmp_path, options):
    result = fit("net", data, out=tmp_path, epochs=4, batch_size=16, **{**FAST, **options})
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.val_acc > 0.6
    if options.get("metrics_format") == "csv":
        assert (tmp_path / "metrics.csv").read_text().startswith("epoch,")


def test_explicit_penalties_are_added_to_the_loss(data):
    # With a vanishing learning rate the weights stay put, so the reported loss
    # differs from the plain run by exactly the lecture's penalty terms.
    opts = dict(epochs=1, lr=1e-12, momentum=0.0, batch_size=16, **FAST)
    plain = fit("net", data, **opts)
    l2 = fit("net", data, l2=0.01, **opts)
    l1 = fit("net", data, l1=0.001, **opts)
    with torch.no_grad():
        squares = sum(float(p.pow(2).sum()) for p in plain.model.parameters())
        absolutes = sum(float(p.abs().sum()) for p in plain.model.parameters())
    base = plain.history[0]["train_loss"]
    assert l2.history[0]["train_loss"] - base == pytest.approx(0.01 * squares, rel=1e-4)
    assert l1.history[0]["train_loss"] - base == pytest.approx(0.001 * absolutes, rel=1e-4)


class _Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_fit_start(self, trainer):
        self.events.append("start")

    def on_epoch_start(self, trainer, epoch):
        self.events.append(f"epoch{epoch}")
        if epoch == 2:  # unfreeze the backbone with its own learning rate
            for p in trainer.model.conv1.parameters():
                p.requires_grad_(True)
            trainer.add_param_group({"params": list(trainer.model.conv1.parameters()), "lr": 1e-3})

    def on_epoch_end(self, trainer, epoch, metrics):
        self.events.append(f"end{epoch}:{metrics['epoch']}")

    def on_fit_end(self, trainer, result):
        self.events.append(result.stopped)


def test_transfer_api_groups_callbacks_train_mode_and_extra_config(data, tmp_path):
    torch.manual_seed(0)
    model = zoo.create_model("net", num_classes=3)
    for p in model.conv1.parameters():
        p.requires_grad_(False)
    frozen_before = model.conv1.weight.clone()
    modes = []

    def groups(m):
        rest = [p for n, p in m.named_parameters() if not n.startswith("conv1.")]
        return [{"params": rest[:2], "lr": 0.01}, {"params": rest[2:], "lr": 0.05}]

    def train_mode(m):
        modes.append(True)
        m.train()
        m.conv1.eval()

    recorder = _Recorder()
    Trainer(model, data, param_groups=groups, callbacks=[recorder], train_mode=train_mode,
                     extra_config={"transfer": {"from": "test"}}, out=str(tmp_path), epochs=3, lr=0.05,
                     scheduler="onecycle", batch_size=16, **FAST).fit()
    assert recorder.events == ["start", "epoch1", "end1:1", "epoch2", "end2:2", "epoch3", "end3:3", "completed"]
    assert len(modes) == 3
    assert not torch.equal(frozen_before, model.conv1.weight)  # trained after the unfreeze
    assert load_config(tmp_path / "last")["transfer"] == {"from": "test"}


def test_model_zoo_train_mode_hook_is_respected(data):
    model = zoo.create_model("net", num_classes=3)
    calls = []
    model.zoo_train_mode = lambda: (calls.append(1), model.train())
    Trainer(model, data, epochs=2, batch_size=32, **FAST).fit()
    assert len(calls) == 2


def test_plain_tensor_features_train_without_normalisation():
    torch.manual_seed(0)
    feats = torch.randn(120, 8)
    labels = (feats[:, 0] > 0).long()
    head = torch.nn.Linear(8, 2)
    result = Trainer(head, (feats[:90], labels[:90]), (feats[90:], labels[90:]), epochs=15, lr=0.1,
                     batch_size=16, class_names=["neg", "pos"], **FAST).fit()
    assert result.val_acc >= 0.9 and result.mean is None
    with pytest.raises(CheckpointError, match="zoo.create_model"):
        Trainer(torch.nn.Linear(8, 2), (feats, labels), out="unused", epochs=1, **FAST).fit()
    dataset = torch.utils.data.TensorDataset(feats, labels)
    again = Trainer(torch.nn.Linear(8, 2), dataset, epochs=2, **FAST).fit()
    assert again.class_names == ["0", "1"]


def test_unknown_options_are_rejected(data):
    with pytest.raises(ZooError, match="unknown training option"):
        Trainer("net", data, epoch=3)
    with pytest.raises(ZooError, match="unknown optimizer"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ZooError, match="--epochs"):
        TrainConfig(epochs=0)


def test_zoo_fit_is_the_one_call_api_and_zoo_train_is_deprecated(folder):
    import zoo.train.trainer  # noqa: F401  (importing a submodule must not hide the API)

    result = zoo.fit("net", str(folder), epochs=1, batch_size=32, **FAST)
    assert len(result.history) == 1
    with pytest.warns(DeprecationWarning, match=r"zoo\.fit"):
        old = zoo.train("net", str(folder), epochs=1, batch_size=32, **FAST)
    assert len(old.history) == 1


def test_uint8_image_tensors_are_normalised_with_their_own_statistics(data):
    x, y = data.train.images, data.train.labels
    trainer = Trainer("net", (x, y), class_names=data.class_names, epochs=1, **FAST)
    trainer.setup()
    from zoo.data import compute_mean_std

    assert (trainer.mean, trainer.std) == compute_mean_std(x)
