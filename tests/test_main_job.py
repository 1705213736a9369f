"""The README's two commands: the main job's path (on the torch-only backbone, kept fast) and the test command."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).parents[1]


def readme_commands() -> list[str]:
    """The command lines of the README's ```bash blocks (comments dropped)."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    return [line.strip() for block in blocks[:2] for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_test_command_is_what_ci_runs():
    install_and_test = readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert install_and_test in ci.splitlines()
    assert "plugins/zoo-efficientnet-lite" in install_and_test  # CI installs the plugin, so its tests run
    assert 'if [ "$rc" -eq 5 ]' in ci  # pytest's "no tests ran" still fails CI


def test_main_command_path_learns_on_the_shipped_backbone(tmp_path):
    from zoo.cli import cli

    main = readme_commands()[0].split("&&")[-1].strip()
    args = shlex.split(main)
    assert args[:3] == ["zoo", "finetune", "efficientnet_lite0"] and "demo:cats" in args
    # the same command on cifar8_resnet (torch only, 32x32): same path, seconds instead of a minute
    args[2] = "cifar8_resnet"
    args[args.index("--input-size") + 1] = "3x32x32"
    result = CliRunner().invoke(cli, [*args[1:], "--epochs", "8", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "features:  cached" in result.output
    best = re.search(r"best val_acc (\d+\.\d+)%", result.output)
    assert best and float(best.group(1)) > 56.0, result.output[-500:]
    epochs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"] - 0.05
