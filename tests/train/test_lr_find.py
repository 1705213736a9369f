"""The LR range test: it finds the range that trains, leaves the model as it was, and refuses a model that diverges."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from zoo.train import Trainer, fit
from zoo.train.lr_find import LRFindDivergedError, find_lr

FAST = dict(progress=False, plot=False)


def _blobs(n=256):
    """Two classes apart along one of 8 axes. Trained for one epoch (SGD, momentum 0.9, batches of 32), lr 1e-4
    and 1e-3 stay near chance, 0.1 reaches about 88% and 1 still about 84% (measured when this test was written)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 2
    x = torch.randn(n, 8, generator=g)
    x[:, 0] += (y * 2 - 1).float()
    return x, y


def _snapshot(trainer):
    weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    return weights, copy.deepcopy(trainer.optimizer.state_dict()), [g["lr"] for g in trainer.optimizer.param_groups]


def _same_state(a, b):
    (wa, oa, la), (wb, ob, lb) = a, b
    same_opt = oa["param_groups"] == ob["param_groups"] and oa["state"].keys() == ob["state"].keys() and all(
        torch.equal(oa["state"][k][n], ob["state"][k][n]) for k in oa["state"] for n in oa["state"][k])
    return all(torch.equal(wa[k], wb[k]) for k in wa) and same_opt and la == lb


def test_the_range_test_finds_the_range_that_trains_and_restores_everything(tmp_path):
    x, y = _blobs()
    torch.manual_seed(0)
    trainer = Trainer(nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Linear(8, 2)), (x, y), epochs=1,
                      batch_size=32, **FAST)
    trainer.fit()  # momentum buffers and BatchNorm statistics to restore
    before, rng = _snapshot(trainer), torch.get_rng_state()
    found = find_lr(trainer, steps=60)
    assert _same_state(before, _snapshot(trainer)) and torch.equal(rng, torch.get_rng_state())
    assert 1e-2 <= found.suggestion <= 1.0, found.summary()
    assert found.lrs[0] == pytest.approx(1e-7) and len(found.lrs) == len(found.losses) <= 60
    assert found.plot(tmp_path / "lr.png").stat().st_size > 0


def test_lr_auto_trains_at_the_suggestion():
    x, y = _blobs()
    torch.manual_seed(0)
    result = fit(nn.Linear(8, 2), (x[:192], y[:192]), val_data=(x[192:], y[192:]), epochs=1, batch_size=32,
                 lr_find=True, **FAST)
    assert 1e-2 <= result.history[-1]["lr"] <= 1.0
    assert result.val_acc > 0.75  # chance is 0.5


class Exploding(nn.Module):
    """Infinite logits from the first batch on."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(x) * float("inf")


def test_a_model_that_diverges_from_the_first_step_is_a_clear_error_and_left_unchanged():
    x, y = _blobs(64)
    trainer = Trainer(Exploding(), (x, y), epochs=1, batch_size=16, **FAST)
    trainer.setup()
    before = _snapshot(trainer)
    with pytest.raises(LRFindDivergedError, match="diverged at step 1 of 20 .*right from the start.*model is unchanged") as info:
        find_lr(trainer, steps=20)
    assert "\n" not in str(info.value) and _same_state(before, _snapshot(trainer))
    trainer.close()


def test_zoo_lr_find_prints_a_suggestion_and_writes_the_plot(tmp_path):
    from zoo.cli import cli
    from zoo.testing import make_image_folder

    folder = make_image_folder(tmp_path / "d", ("red", "green"), per_class=8, size=32)
    result = CliRunner().invoke(cli, ["lr-find", "net", "--data", str(folder), "--batch-size", "8", "--start-lr",
                                      "1e-4", "--end-lr", "1", "--steps", "12", "--plot", str(tmp_path / "p.png"),
                                      "--json", "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert 1e-5 < summary["suggestion"] < 1 and (tmp_path / "p.png").is_file()
    bad = CliRunner().invoke(cli, ["lr-find", "net", "--data", str(folder), "--start-lr", "1", "--end-lr", "0.1"])
    assert bad.exit_code == 2 and "must be below --end-lr" in bad.output
