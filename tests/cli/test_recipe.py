"""--config: recipe files fill the options, flags win, typos are refused, and config.json reruns a run."""

from __future__ import annotations

import json
import sys

import click
import torch
from click.testing import CliRunner

from zoo.cli import cli
from zoo.cli._options import config_option, read_recipe, shipped_recipes
from zoo.testing import make_image_folder, torch_threads


@click.command()
@click.argument("name")
@config_option()
@click.option("--lr", type=float, default=0.01)
@click.option("--epochs", type=int, default=10)
@click.option("--milestones")
@click.option("--model-arg", "model_args", multiple=True)
@click.option("--no-plot", is_flag=True)
def show(**values):
    click.echo(json.dumps(values, sort_keys=True))


def run(command, *args):
    return CliRunner().invoke(command, [str(a) for a in args])


def test_a_recipe_fills_options_and_flags_win(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('name = "net"\nlr = 0.5\nepochs = 3\nmilestones = [2, 4]\nno-plot = true\n'
                      '[model-arg]\nact = "relu"\nwidth = 8\n')
    got = json.loads(run(show, "--config", recipe, "--lr", "0.1").output)
    assert got == {"name": "net", "lr": 0.1, "epochs": 3, "milestones": "2,4", "no_plot": True,
                   "model_args": ["act='relu'", "width=8"]}
    # The same as YAML; the flag still wins wherever it stands.
    (tmp_path / "r.yaml").write_text("lr: 0.5\nepochs: 3\n")
    assert json.loads(run(show, "x", "--epochs", "7", "--config", tmp_path / "r.yaml").output)["epochs"] == 7


def test_bad_recipes_are_one_line_errors(tmp_path, monkeypatch):
    (tmp_path / "typo.toml").write_text("epoch = 3\n")
    result = run(show, "x", "--config", tmp_path / "typo.toml")
    assert result.exit_code == 2 and "unknown key 'epoch'; did you mean 'epochs'?" in result.output
    (tmp_path / "broken.toml").write_text("lr = \n")
    assert "does not parse" in run(show, "x", "--config", tmp_path / "broken.toml").output
    (tmp_path / "r.yaml").write_text("lr: 0.5\n")
    monkeypatch.setitem(sys.modules, "yaml", None)
    result = run(show, "x", "--config", tmp_path / "r.yaml")
    assert result.exit_code == 1 and "needs PyYAML: pip install pyyaml" in result.output


def test_a_recipe_run_and_a_rerun_equal_the_run_by_flags(tmp_path):
    from safetensors.torch import load_file

    data = make_image_folder(tmp_path / "data", ("a", "b"), per_class=6, size=32)
    flags = ["--data", data, "--epochs", "2", "--batch-size", "4", "--lr", "0.05", "--seed", "3", "-q", "--no-plot"]
    (tmp_path / "r.toml").write_text(f'data = "{data}"\nepochs = 2\nbatch-size = 4\nlr = 0.05\nseed = 3\n'
                                     'quiet = true\nno-plot = true\n')
    with torch_threads(1):
        by_flags = run(cli, "train", "net", *flags, "--out", tmp_path / "flags")
        by_file = run(cli, "train", "net", "--config", tmp_path / "r.toml", "--out", tmp_path / "file")
        again = run(cli, "train", "--config", tmp_path / "flags/best/config.json", "--out", tmp_path / "again")
    assert by_flags.exit_code == by_file.exit_code == again.exit_code == 0, again.output
    weights = [load_file(str(tmp_path / d / "last/model.safetensors")) for d in ("flags", "file", "again")]
    assert all(torch.equal(weights[0][k], w[k]) for w in weights[1:] for k in weights[0])
    recorded = json.loads((tmp_path / "again/best/config.json").read_text())["train_args"]
    assert recorded["data"] == str(data) and recorded["seed"] == 3 and recorded["out"] == str(tmp_path / "again")


def test_shipped_recipes_are_finetune_options_and_lose_to_config_and_flags(tmp_path):
    from zoo.cli.finetune import finetune_command

    recipes = shipped_recipes()
    assert {"linear-probe", "gradual-unfreeze", "full"} <= set(recipes)
    for path in recipes.values():
        assert read_recipe(str(path), finetune_command)  # every key is a finetune option
    # finetune's own options, echoed instead of run
    probe = click.Command("probe", params=list(finetune_command.params),
                          callback=lambda **values: click.echo(json.dumps(values, default=str)))
    (tmp_path / "mine.toml").write_text("lr = 0.2\n")  # linear-probe says lr 3e-3 and epochs 10
    for args in (["--recipe", "linear-probe", "--config", tmp_path / "mine.toml"],
                 ["--config", tmp_path / "mine.toml", "--recipe", "linear-probe"]):
        got = json.loads(run(probe, "x", "--data", "d", *args).output)
        assert got["lr"] == 0.2 and got["epochs"] == 10 and got["optimizer"] == "adamw"
    assert json.loads(run(probe, "x", "--data", "d", "--recipe", "linear-probe", "--epochs", "2").output)["epochs"] == 2
    assert "choose frozen, lp-ft, auto, or a preset zoo ships: full, gradual-unfreeze, linear-probe" in run(probe, "x", "--recipe", "nope").output
