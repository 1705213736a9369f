"""``zoo finetune --recipe``: auto keeps the better stage, the budget, and one real run end to end."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import zoo.transfer.finetune as finetune_module
from zoo.errors import ZooError
from zoo.transfer.recipes import finetune_with_recipe


def fake_stages(monkeypatch, probe_acc, ft_acc, calls):
    """finetune() stand-ins: the probe and the second stage reach the given validation accuracies."""

    def fake(source, data, cfg, options, log=None, callbacks=()):
        second = options.keep_head
        calls.append((source, cfg, options))
        out = Path(cfg.out)
        (out / "best").mkdir(parents=True, exist_ok=True)
        (out / "best" / "config.json").write_text(json.dumps({"stage": "lp-ft" if second else "probe"}))
        return SimpleNamespace(val_acc=ft_acc if second else probe_acc, best_path=out / "best", model=None,
                               input_size=(3, 32, 32), history=[{}] * cfg.epochs, stopped="completed",
                               train_images=5000, cached_features=not second)

    monkeypatch.setattr(finetune_module, "finetune", fake)


@pytest.mark.parametrize("probe_acc, ft_acc, kept", [(0.70, 0.85, "lp-ft"), (0.80, 0.75, "frozen head"),
                                                     (0.80, 0.80, "frozen head")])
def test_auto_keeps_the_better_stage_on_validation(monkeypatch, tmp_path, probe_acc, ft_acc, kept):
    calls, lines = [], []
    fake_stages(monkeypatch, probe_acc, ft_acc, calls)
    result = finetune_with_recipe("net", "data", recipe="auto", out=str(tmp_path), epochs=3, log=lines.append)
    assert result.recipe.kept == kept
    assert result.best_path == tmp_path / "best"
    stage = json.loads((tmp_path / "best" / "config.json").read_text())["stage"]
    assert stage == ("lp-ft" if kept == "lp-ft" else "probe")  # OUT/best is the kept model, never the worse one
    # the probe is the frozen head on cached features; the second stage starts from its checkpoint
    (_, probe_cfg, probe_opts), (src, ft_cfg, ft_opts) = calls
    assert probe_opts.freeze == "backbone" and probe_cfg.augment == "none"
    assert src == str(tmp_path / "probe" / "best") and ft_opts.freeze == "none" and ft_opts.keep_head
    assert ft_cfg.augment != "none" and ft_cfg.lr < probe_cfg.lr
    assert any("tried lp-ft" in line for line in lines) and any(kept in line for line in lines if "recipe auto:" in line)
    assert json.loads((tmp_path / "recipe.json").read_text())["kept"] == kept


def test_a_budget_too_small_keeps_the_head_and_says_so(monkeypatch, tmp_path):
    calls, lines = [], []
    fake_stages(monkeypatch, 0.7, 0.99, calls)
    result = finetune_with_recipe("net", "data", recipe="auto", budget=1e-6, out=str(tmp_path), log=lines.append)
    assert len(calls) == 1 and result.recipe.kept == "frozen head"
    assert "budget" in result.recipe.reason and "kept the frozen head" in result.recipe.reason
    assert any("budget" in line for line in lines)


def test_bad_recipe_options(tmp_path):
    with pytest.raises(ZooError, match="unknown recipe"):
        finetune_with_recipe("net", "data", recipe="best")
    with pytest.raises(ZooError, match="--budget applies"):
        finetune_with_recipe("net", "data", recipe="frozen", budget=5)
    with pytest.raises(ZooError, match="positive"):
        finetune_with_recipe("net", "data", recipe="auto", budget=0)


def test_lp_ft_end_to_end_on_a_shipped_backbone(tiny_folder, tmp_path):
    # the real thing, small: the probe trains on cached features, the second stage keeps its head
    from zoo.testing import torch_threads
    from zoo.transfer.finetune import FinetuneOptions

    lines = []
    with torch_threads(1):
        result = finetune_with_recipe("cifar8_resnet", str(tiny_folder), options=FinetuneOptions(feature_engine="torch"),
                                      recipe="lp-ft", out=str(tmp_path), epochs=6,
                                      lr=0.02, batch_size=16, ft_epochs=1, progress=False, plot=False,
                                      metrics_format="none", log=lines.append)
    probe, ft = result.recipe.attempts
    assert probe.val_acc >= 0.8  # 2 classes: chance is 0.5
    assert ft.val_acc is not None and ft.val_acc >= 0.8  # starting from the trained head, it still knows
    assert result.recipe.kept == "lp-ft" and (tmp_path / "best" / "config.json").exists()
    config = json.loads((tmp_path / "best" / "config.json").read_text())
    assert config["finetune"]["freeze"] == "none" and config["finetune"]["keep_head"] is True
    assert any("BatchNorm stays frozen" in line for line in lines)  # 32 images: too few to train its statistics


def test_cli_refuses_a_budget_without_a_recipe_in_one_line(tiny_folder):
    from click.testing import CliRunner

    from zoo.cli import cli

    result = CliRunner().invoke(cli, ["finetune", "cifar8_resnet", "--data", str(tiny_folder), "--budget", "5"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: --budget applies to --recipe auto or lp-ft")


def test_the_deadline_stops_an_epoch_that_would_end_past_the_budget(monkeypatch):
    import zoo.transfer.recipes as recipes

    clock = [100.0]
    monkeypatch.setattr(recipes.time, "perf_counter", lambda: clock[0])
    stops, lines = [], []
    trainer = SimpleNamespace(train_batches=[None] * 20, request_stop=lambda: stops.append(clock[0]),
                              config=SimpleNamespace(epochs=3))
    callback = recipes.deadline_callback(100.0 + 60, lines.append)  # one minute left
    callback.on_epoch_start(trainer, 1)
    for step in range(1, recipes.PROJECT_AFTER + 1):
        clock[0] += 4.0  # 4 s a step: 20 steps end at 80 s, past the minute
        callback.on_batch_end(trainer, 1, step, None)
    assert stops == [120.0] and callback.fired and "after the budget" in lines[0]
    # an epoch that fits runs on, and the next one is refused at its end when it would not fit
    quick = recipes.deadline_callback(clock[0] + 50, lines.append)
    quick.on_epoch_start(trainer, 2)
    for step in range(1, 21):
        clock[0] += 1.0
        quick.on_batch_end(trainer, 2, step, None)
    assert not quick.fired
    clock[0] += 20.0  # validation: the epoch took 40 s, 10 s are left
    quick.on_epoch_end(trainer, 2, {})
    assert quick.fired and len(stops) == 2
