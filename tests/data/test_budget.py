"""Inference batches sized from a memory budget, and the error for a budget too small for one image."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from torch import nn

from zoo.cli import cli
from zoo.data.budget import activation_bytes, budget_batch_size
from zoo.errors import DataError


def tiny():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 2))


def test_batch_grows_with_the_budget_and_shrinks_with_the_image():
    model = tiny()
    per_image = activation_bytes(model, (3, 32, 32))
    assert per_image >= 8 * 32 * 32 * 4  # at least the conv's output
    small = budget_batch_size(model, (3, 32, 32), 1.0)
    assert small == int(2**20 // per_image)
    assert budget_batch_size(model, (3, 32, 32), 4.0) >= 4 * small - 3
    assert budget_batch_size(model, (3, 64, 64), 1.0) < small
    assert budget_batch_size(model, (3, 32, 32), 10_000.0) == 256  # capped
    assert budget_batch_size(model, (3, 32, 32), 10_000.0, cap=7) == 7
    assert model.training  # the probe leaves the model as it was


def test_budget_too_small_for_one_image_names_the_option():
    with pytest.raises(DataError, match=r"--memory-mb 0\.01 is too small for one 64x64 image.*raise --memory-mb"):
        budget_batch_size(tiny(), (3, 64, 64), 0.01)


def test_evaluate_and_train_refuse_a_tiny_budget_in_one_line(tmp_path):
    from zoo.testing import make_image_folder

    data = make_image_folder(tmp_path / "d", ("a", "b"), per_class=6, size=16, split=True, val_per_class=2)
    runner = CliRunner()
    train = runner.invoke(cli, ["train", "net", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1",
                                "--no-plot", "--memory-mb", "0.0001"])
    assert train.exit_code == 1
    assert train.output.strip().splitlines()[-1].startswith("Error: --memory-mb 0.0001 is too small")
    ok = runner.invoke(cli, ["train", "net", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1",
                             "--no-plot", "--memory-mb", "1"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(cli, ["evaluate", str(tmp_path / "run" / "best"), "--data", str(data), "--memory-mb", "0.0001"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert bad.output.strip().startswith("Error: --memory-mb 0.0001 is too small")
    good = runner.invoke(cli, ["evaluate", str(tmp_path / "run" / "best"), "--data", str(data), "--memory-mb", "1"])
    assert good.exit_code == 0, good.output


def test_predict_sizes_its_batches_from_the_budget(tmp_path):
    from zoo.testing import make_image_folder

    data = make_image_folder(tmp_path / "d", ("a", "b"), per_class=4, size=16, split=True, val_per_class=2)
    runner = CliRunner()
    assert runner.invoke(cli, ["train", "net", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1",
                               "--no-plot"]).exit_code == 0
    ckpt = str(tmp_path / "run" / "best")
    bad = runner.invoke(cli, ["predict", ckpt, str(data), "--memory-mb", "0.0001"])
    assert bad.exit_code == 1 and bad.output.strip().startswith("Error: --memory-mb 0.0001 is too small")
    good = runner.invoke(cli, ["predict", ckpt, str(data), "--memory-mb", "0.5", "--json"])
    assert good.exit_code == 0, good.output
    assert good.output.count('"input"') == 12
