"""One CLI convention (docs/cli.md): the same names mean the same things in every command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from zoo.cli import COMMANDS, cli
from zoo.plugins import BUILTIN_COMMANDS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
DEVICE_COMMANDS = [["train", "net", "--data", "x"], ["evaluate", "ck", "--data", "x"], ["predict", "ck", "a.jpg"],
                   ["bench", "net"], ["pretrain", "autoencoder", "--data", "x"], ["finetune", "net", "--data", "x"]]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_the_plugin_manager_reserves_exactly_the_cli_commands():
    assert BUILTIN_COMMANDS == set(COMMANDS)


def test_every_command_is_in_the_convention_table():
    listed = set(re.findall(r"^\| `zoo ([a-z-]+)", DOCS.read_text(), flags=re.M))
    assert listed == set(COMMANDS)


@pytest.mark.parametrize("args", DEVICE_COMMANDS, ids=lambda a: a[0])
def test_device_is_validated_the_same_way_everywhere(args):
    result = run(*args, "--device", "tpu")
    assert result.exit_code == 2
    assert "unknown device 'tpu'; use auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps" in result.output


@pytest.mark.parametrize("command", ["train", "finetune", "export", "pretrain autoencoder"])
def test_dash_q_means_quiet(command):
    result = run(*command.split(), "--help")
    assert re.search(r"-q, --quiet", result.output), result.output


def test_export_takes_named_data_and_the_old_dash_q_still_quantizes(tmp_path):
    result = run("export", "lenet5", "--out", tmp_path, "--data", "demo:cats", "-q", "fp16", "--json")
    assert result.exit_code == 0, result.output
    assert "-q for --quantize is deprecated" in result.stderr and (tmp_path / "model.fp16.onnx").is_file()
    quiet = run("export", "lenet5", "--out", tmp_path / "q", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == "" and (tmp_path / "q" / "model.onnx").is_file()


def test_the_source_argument_is_named_alike():
    for command in ("finetune", "export", "bench", "predict", "evaluate", "mistakes"):
        assert "SOURCE" in run(command, "--help").output.splitlines()[0], command
