"""Plugin discovery through entry points, failure isolation, allowlists, duplicates."""

import inspect
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import zoo.hookspecs
from zoo.cli import cli

GOOD = """
import zoo
from zoo import ModelSpec

@zoo.hookimpl
def register_models(register):
    register(ModelSpec(name="good_net", builder="zoo.models.lecture:net", family="good",
                       input_size=(3, 32, 32), num_classes=2))
"""

RAISES = """
import zoo

@zoo.hookimpl
def register_models(register):
    raise RuntimeError("database of models is offline")
"""

DUPLICATE = """
import zoo
from zoo import ModelSpec

@zoo.hookimpl
def register_models(register):
    register(ModelSpec(name="dup_ok", builder="zoo.models.lecture:net"))
    register(ModelSpec(name="net", builder="zoo.models.lecture:net"))
"""


def run(*args, **kw):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, **kw)


def test_entry_point_plugin_is_discovered(fresh_plugins, fake_distribution):
    fake_distribution("good", GOOD, version="2.5")
    result = run("list", "good_*")
    assert result.exit_code == 0
    assert "good_net" in result.output and "good" in result.output
    info = fresh_plugins.get_manager().plugins["good"]
    assert (info.distribution, info.version) == ("zoo-good", "2.5")
    assert info.hooks == ["register_models"]
    assert info.registered == {"models": ["good_net"]}


def test_plugin_that_fails_to_import_does_not_break_list(fresh_plugins, fake_distribution):
    fake_distribution("broken", "raise ImportError('no module named shiny')")
    fake_distribution("good", GOOD)
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 0
    assert "good_net" in result.stdout and "net" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert "'broken'" in warnings[0] and "ImportError" in warnings[0]
    shown = run("plugins")
    assert "broken" in shown.output and "ERROR" in shown.output and "no module named shiny" in shown.output


def test_hook_that_raises_is_recorded_and_others_load(fresh_plugins, fake_distribution):
    fake_distribution("flaky", RAISES)
    fake_distribution("good", GOOD)
    manager = fresh_plugins.get_manager()
    assert "good_net" in manager.models
    assert manager.plugins["flaky"].errors == [
        "hook register_models raised RuntimeError: database of models is offline"
    ]
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert '"flaky"' in result.stdout and "database of models is offline" in result.stdout


def test_duplicate_name_is_refused_naming_both(fresh_plugins, fake_distribution):
    fake_distribution("dup", DUPLICATE)
    manager = fresh_plugins.get_manager()
    (error,) = manager.plugins["dup"].errors
    assert "model name 'net' from 'dup' is already registered by 'builtin'" in error
    # all-or-nothing per hook call: the plugin's other model is not half-registered
    assert "dup_ok" not in manager.models
    assert manager.models.get("net").source == "builtin"


def test_override_is_explicit_and_reported(fresh_plugins, fake_distribution):
    fake_distribution("over", DUPLICATE.replace(
        'register(ModelSpec(name="net", builder="zoo.models.lecture:net"))',
        'register(ModelSpec(name="net", builder="zoo.models.lecture:net", family="mine"), override=True)'))
    manager = fresh_plugins.get_manager()
    assert manager.plugins["over"].errors == []
    assert manager.models.get("net").family == "mine"
    assert "model 'net' from 'builtin' was overridden by 'over'" in run("plugins").output


def test_allowlist_env_and_no_plugins_flag(fresh_plugins, fake_distribution, monkeypatch):
    fake_distribution("good", GOOD)
    fake_distribution("broken", "raise ImportError('boom')")
    monkeypatch.setenv("ZOO_PLUGINS", "good")
    result = CliRunner().invoke(cli, ["list", "good_*"])
    assert "good_net" in result.stdout and "warning" not in result.stderr
    assert fresh_plugins.get_manager().plugins["broken"].skipped

    fresh_plugins.reset()
    monkeypatch.setenv("ZOO_PLUGINS", "")
    assert "good_net" not in fresh_plugins.get_manager().models

    fresh_plugins.reset()
    monkeypatch.delenv("ZOO_PLUGINS")
    result = CliRunner().invoke(cli, ["--no-plugins", "list"])
    assert result.exit_code == 0 and "good_net" not in result.stdout and "warning" not in result.stderr
    assert "net" in result.stdout


def test_unknown_hook_name_is_a_plugin_error(fresh_plugins, fake_distribution):
    fake_distribution("typo", "import zoo\n@zoo.hookimpl\ndef register_model(register):\n    pass\n")
    (error,) = fresh_plugins.get_manager().plugins["typo"].errors
    assert "unknown hook(s) register_model" in error


def test_wrong_item_type_is_a_plugin_error(fresh_plugins, fake_distribution):
    fake_distribution("wrong", "import zoo\n@zoo.hookimpl\ndef register_models(register):\n    register({'name': 'x'})\n")
    (error,) = fresh_plugins.get_manager().plugins["wrong"].errors
    assert "register_models expects ModelSpec objects, got dict" in error


def test_plugin_command_is_added_and_clash_refused(fresh_plugins, fake_distribution):
    fake_distribution("cmds", """
import zoo

@zoo.hookimpl
def register_commands(register):
    import click

    @click.command("hello")
    def hello():
        click.echo("hello from a plugin")

    register(hello)
""")
    fake_distribution("clash", """
import zoo

@zoo.hookimpl
def register_commands(register):
    import click
    register(click.Command("list"))
""")
    result = run("hello")
    assert result.stdout.strip() == "hello from a plugin"
    assert "hello" in run("--help").output
    (error,) = fresh_plugins.get_manager().plugins["clash"].errors
    assert "command 'list' from 'clash' clashes with one from 'zoo'" in error


def test_every_hook_is_documented_and_typed():
    doc = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    specs = [name for name, fn in inspect.getmembers(zoo.hookspecs, inspect.isfunction) if name.startswith("register_")]
    assert set(specs) == set(zoo.plugins.HOOK_NAMES)
    for name in specs:
        fn = getattr(zoo.hookspecs, name)
        assert fn.__doc__ and len(fn.__doc__) > 80, name
        assert "register" in inspect.signature(fn).parameters
        assert re.search(rf"^##+ .*`{name}`", doc, re.M), f"docs/plugins.md has no section for {name}"


@pytest.mark.parametrize("command", [
    ["train", "flaky_net", "--data", "."],
    ["finetune", "flaky_net", "--data", "."],
    ["export", "flaky_net", "--out", "out"],
    ["bench", "flaky_net"],
    ["predict", "flaky_net", "."],
])
def test_unknown_model_names_the_plugin_that_failed(fresh_plugins, fake_distribution, command, tmp_path,
                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_distribution("flaky", RAISES)
    result = CliRunner().invoke(cli, command)
    assert result.exit_code != 0
    assert "unknown model 'flaky_net'" in result.output
    assert "plugin 'flaky' failed to load" in result.output and "see 'zoo plugins'" in result.output
