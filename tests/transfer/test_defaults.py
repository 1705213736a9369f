"""zoo.finetune(...) and `zoo finetune` share one set of finetune defaults (issue 18, item 6)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.transfer import finetune as ft
from zoo.train import TrainConfig


def _capture(monkeypatch):
    seen = {}

    def fake(source, data, cfg=None, options=None, **kwargs):
        seen.update(cfg=cfg, options=options, kwargs=kwargs)
        return "plan"

    monkeypatch.setattr(ft, "finetune", fake)
    return seen


def test_the_cli_and_the_python_api_use_the_same_defaults(monkeypatch, tmp_path):
    seen = _capture(monkeypatch)
    result = CliRunner().invoke(cli, ["finetune", "net", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                                      "--dry-run"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    cli_cfg, cli_options = seen["cfg"], seen["options"]
    api_cfg = ft.finetune_config(out=str(tmp_path / "o"))
    # Every training field the CLI leaves at its default is the API's default too, except what
    # only a command line has (progress, plots, the auto cache).
    cli_only = {"cache", "plot", "progress", "model_args"}
    differ = {f.name: (getattr(cli_cfg, f.name), getattr(api_cfg, f.name)) for f in dataclasses.fields(TrainConfig)
              if f.name not in cli_only and getattr(cli_cfg, f.name) != getattr(api_cfg, f.name)}
    assert differ == {}
    assert (api_cfg.optimizer, api_cfg.lr, api_cfg.epochs, api_cfg.normalize) == ("adamw", 3e-3, 20, "model")
    assert cli_options == ft.FinetuneOptions()


def test_finetune_without_a_config_trains_with_the_finetune_defaults(monkeypatch):
    seen = {}

    def fake_prepare(source, num_classes, options, lr, model_args):
        seen["lr"] = lr
        raise RuntimeError("stop here")

    monkeypatch.setattr(ft, "prepare", fake_prepare)
    monkeypatch.setattr(ft, "_class_names", lambda data, cfg: (seen.setdefault("cfg", cfg), ["a", "b"])[1])
    try:
        zoo.finetune("net", "unused", dry_run=True)
    except RuntimeError:
        pass
    assert seen["lr"] == 3e-3
    cfg = seen["cfg"]
    assert (cfg.optimizer, cfg.epochs, cfg.normalize) == ("adamw", 20, "model")


def test_docs_state_the_defaults():
    text = (Path(__file__).parents[2] / "docs" / "transfer.md").read_text()
    assert "AdamW, `--lr 3e-3`, 20 epochs" in text
