"""The command line through click's CliRunner: listing, info, errors, help."""

import json

import pytest
from click.testing import CliRunner

from zoo import __version__
from zoo.cli import COMMANDS, cli


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"zoo {__version__}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: zoo " + command in result.stdout


def test_list_table_and_json(fresh_plugins):
    table = invoke("list")
    assert table.exit_code == 0
    header, _, *rows = table.stdout.splitlines()
    assert header.split() == ["NAME", "FAMILY", "INPUT", "PARAMS", "SOURCE"]
    assert any(r.split()[:3] == ["net", "lecture", "3x32x32"] for r in rows)
    data = json.loads(invoke("list", "net", "--json").stdout)
    assert [d["name"] for d in data] == ["net"] and data[0]["params"] == 18_090


def test_list_pattern_without_match_is_not_an_error(fresh_plugins):
    result = invoke("list", "nonexistent_arch*")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no models match" in result.stderr


def test_invalid_family_is_one_line_and_nonzero(fresh_plugins):
    result = invoke("list", "--family", "nosuchfamily")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: unknown family 'nosuchfamily'; choose from:") and "lecture" in line


def test_info_describes_the_model(fresh_plugins):
    result = invoke("info", "net")
    assert result.exit_code == 0
    assert "18,090 total, 18,090 trainable" in result.stdout
    assert "classifier:     fc2" in result.stdout
    assert "3x32x32" in result.stdout
    narrow = json.loads(invoke("info", "net", "--num-classes", "5", "--model-arg", "kernel_size=5", "--json").stdout)
    assert narrow["num_classes"] == 5
    # 5x5 kernels: conv1 3*16*25+16, conv2 16*8*25+8, fc1 16,416, fc2 32*5+5
    assert narrow["params"] == 1216 + 3208 + 16_416 + 165


def test_unknown_model_suggests_and_has_no_traceback(fresh_plugins):
    result = invoke("info", "nett")
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("Error: unknown model 'nett'; did you mean net")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_bad_model_argument_is_a_clear_error(fresh_plugins):
    result = invoke("info", "net", "--model-arg", "wings=2")
    assert result.exit_code == 1
    assert "unexpected keyword argument 'wings'" in result.stderr and "Traceback" not in result.output
    result = invoke("info", "net", "--model-arg", "oops")
    assert result.exit_code == 2 and "expected key=value" in result.stderr


def test_debug_shows_the_traceback(fresh_plugins):
    result = invoke("--debug", "info", "nett")
    assert result.exit_code == 1
    assert result.exception is not None and type(result.exception).__name__ == "UnknownModelError"


def test_unknown_command_suggests():
    result = invoke("lst")
    assert result.exit_code == 2 and "did you mean list" in result.stderr


def test_plugins_lists_builtins(fresh_plugins):
    data = json.loads(invoke("plugins", "--json").stdout)
    builtin = next(p for p in data if p["name"] == "zoo.models")
    assert builtin["builtin"] and builtin["errors"] == [] and "net" in builtin["registered"]["models"]


def test_model_names_complete_in_the_shell(fresh_plugins):
    from zoo.cli._options import complete_model_name

    names = [item.value for item in complete_model_name(None, None, "ne")]
    assert "net" in names and all(n.startswith("ne") for n in names)
