"""The example third-party distribution under plugins/, really installed with pip."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN_DIR = Path(__file__).parents[1] / "plugins" / "zoo-example"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """pip-install the plugin into its own directory, put on PYTHONPATH by the tests."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    shutil.copytree(PLUGIN_DIR, build / "zoo-example")  # keep build artefacts out of the checkout
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(build / "zoo-example")],
        check=True, capture_output=True, timeout=300,
    )
    return target


def zoo_run(site, *args):
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("ZOO_PLUGINS", None)
    return subprocess.run([shutil.which("zoo"), *args], capture_output=True, text=True, env=env, timeout=300)


def test_installed_plugin_appears_in_list_and_plugins(plugin_site):
    listed = zoo_run(plugin_site, "list", "example_*", "--json")
    assert listed.returncode == 0, listed.stderr
    (spec,) = json.loads(listed.stdout)
    assert spec["name"] == "example_tinynet" and spec["source"] == "example"
    plugins = json.loads(zoo_run(plugin_site, "plugins", "--json").stdout)
    example = next(p for p in plugins if p["name"] == "example")
    assert example["distribution"] == "zoo-example" and example["version"] == "0.2.0"
    assert example["errors"] == []
    assert example["registered"] == {"models": ["example_tinynet"], "exporters": ["torchscript"], "commands": ["count-params"]}


def test_installed_plugin_model_builds_and_command_runs(plugin_site):
    info = zoo_run(plugin_site, "info", "example_tinynet", "--num-classes", "4", "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["num_classes"] == 4
    counted = zoo_run(plugin_site, "count-params", "example_tinynet")
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.strip() == "example_tinynet\t24,458"


def test_plugin_allowlist_excludes_it(plugin_site):
    env_list = subprocess.run(
        [shutil.which("zoo"), "list", "example_*"], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(plugin_site), "ZOO_PLUGINS": ""},
    )
    assert env_list.returncode == 0 and "example_tinynet" not in env_list.stdout


def test_plugin_own_test_suite_passes(plugin_site, tmp_path):
    """The plugin's tests use zoo.testing.check_plugin, the conformance kit."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PLUGIN_DIR / "tests")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(plugin_site)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
