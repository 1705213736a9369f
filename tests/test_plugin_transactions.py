"""A plugin's hook call is all-or-nothing, also when the clash is only found while committing."""

from __future__ import annotations

import types

import click
import pytest

import zoo
from zoo import DatasetSource, ExportFormat, ModelSpec, WeightSource


def _plugin(**hooks):
    module = types.SimpleNamespace()
    for name, fn in hooks.items():
        setattr(module, name, zoo.hookimpl(fn))
    return module


def _manager(fresh_plugins, monkeypatch):
    monkeypatch.setenv("ZOO_PLUGINS", "")  # the built-ins only: the clashes below are with them
    return fresh_plugins.get_manager()


def test_an_override_whose_alias_clashes_leaves_nothing_of_the_call(fresh_plugins, monkeypatch):
    manager = _manager(fresh_plugins, monkeypatch)

    def register_models(register):
        register(ModelSpec(name="fresh_net", builder="zoo.models.lecture:net"))
        # replaces 'net' on purpose, but its alias is another model's name
        register(ModelSpec(name="net", builder="zoo.models.lecture:net", aliases=("lenet5",)), override=True)

    info = manager.register_plugin(_plugin(register_models=register_models), "clashing")
    assert "fresh_net" not in manager.models
    assert manager.models.get("net").source == "builtin" and manager.models.get("lenet5").name == "lenet5"
    assert info.errors and "'lenet5'" in info.errors[0] and info.registered.get("models", []) == []


def test_a_commit_time_failure_restores_every_table(fresh_plugins, monkeypatch):
    manager = _manager(fresh_plugins, monkeypatch)
    before = manager.models.state()

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    def register_models(register):
        register(ModelSpec(name="first_net", builder="zoo.models.lecture:net"))
        register(ModelSpec(name="second_net", builder="zoo.models.lecture:net"))

    calls = {"n": 0}
    real = manager.models.register

    def fail_on_second(spec, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            explode()
        return real(spec, **kwargs)

    monkeypatch.setattr(manager.models, "register", fail_on_second)
    info = manager.register_plugin(_plugin(register_models=register_models), "half")
    monkeypatch.undo()
    assert "first_net" not in manager.models and manager.models.state() == before
    assert "disk full" in info.errors[0]


@pytest.mark.parametrize("kind", ["datasets", "exporters"])
def test_an_invalid_or_repeated_name_fails_the_whole_call(fresh_plugins, monkeypatch, kind):
    manager = _manager(fresh_plugins, monkeypatch)
    if kind == "datasets":
        def hook(register):
            register(DatasetSource(scheme="goodscheme", resolve="x:y"))
            register(DatasetSource(scheme="Bad Scheme!", resolve="x:y"), override=True)
        plugin, table, good = _plugin(register_datasets=hook), manager.datasets, "goodscheme"
    else:
        def hook(register):
            register(ExportFormat(name="goodformat", export="x:y"))
            register(ExportFormat(name="goodformat", export="x:z"))
        plugin, table, good = _plugin(register_exporters=hook), manager.exporters, "goodformat"
    info = manager.register_plugin(plugin, "bad")
    assert good not in table and info.errors


def test_two_commands_of_one_name_in_one_call_are_refused(fresh_plugins, monkeypatch):
    manager = _manager(fresh_plugins, monkeypatch)

    def register_commands(register):
        register(click.Command("hello", callback=lambda: None))
        register(click.Command("hello", callback=lambda: None))

    info = manager.register_plugin(_plugin(register_commands=register_commands), "twice")
    assert "hello" not in manager.commands and "clashes" in info.errors[0]


def test_a_command_clash_names_the_plugin_that_owns_it(fresh_plugins, monkeypatch):
    manager = _manager(fresh_plugins, monkeypatch)

    def first(register):
        register(click.Command("greet", callback=lambda: None))

    def second(register):
        register(click.Command("greet", callback=lambda: None))

    manager.register_plugin(_plugin(register_commands=first), "first-plugin")
    info = manager.register_plugin(_plugin(register_commands=second), "second-plugin")
    assert manager.commands["greet"][1] == "first-plugin"
    assert "command 'greet' from 'second-plugin' clashes with one from 'first-plugin'" in info.errors[0]


def test_weight_sources_stay_untouched_by_a_failed_call(fresh_plugins, monkeypatch):
    manager = _manager(fresh_plugins, monkeypatch)
    before = [s.name for s in manager.weight_sources]

    def hook(register):
        register(WeightSource(name="extra-source", find="x:y"))
        raise RuntimeError("second source unavailable")

    info = manager.register_plugin(_plugin(register_weight_sources=hook), "sources")
    assert [s.name for s in manager.weight_sources] == before and info.errors
