"""tests/install_browser.sh: the README's test command installs the page test's browser (issue 18, item 18)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SCRIPT = ROOT / "tests" / "install_browser.sh"


def _bin(tmp_path, *names):
    """A PATH of only ``id`` and the given stand-ins (so the machine's own chromium is not seen)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "id").symlink_to(shutil.which("id"))
    for name in names:
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _run(bin_dir, **env):
    return subprocess.run(["/bin/sh", str(SCRIPT)], env={"PATH": str(bin_dir), **env}, capture_output=True, text=True)


def test_the_readme_command_runs_the_script_before_pytest():
    text = (ROOT / "README.md").read_text()
    command = next(line for line in text.splitlines() if "python -m pytest" in line and "pip install" in line)
    assert "&& sh tests/install_browser.sh && python -m pytest" in command
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()  # CI runs exactly the README's command
    assert "apt-get install" not in (ROOT / ".ci" / "run").read_text()  # ...and installs nothing of its own


def test_a_machine_with_the_browser_needs_nothing(tmp_path):
    done = _run(_bin(tmp_path, "chromium", "chromedriver"))
    assert done.returncode == 0 and done.stderr == ""


def test_a_machine_without_it_installs_debians_chromium_as_root(tmp_path):
    bin_dir = _bin(tmp_path)
    log = tmp_path / "apt.log"
    apt = tmp_path / "fake-apt"
    apt.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    apt.chmod(0o755)
    done = _run(bin_dir, ZOO_APT_GET=str(apt))
    if os.geteuid() != 0:
        assert done.returncode == 1 and "sudo apt-get install chromium chromium-driver" in done.stderr
        return
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith("update") and "install -y -q --no-install-recommends chromium chromium-driver" in calls[1]


def test_a_failed_install_fails_with_a_message(tmp_path):
    apt = tmp_path / "fake-apt"
    apt.write_text("#!/bin/sh\nexit 100\n")
    apt.chmod(0o755)
    done = _run(_bin(tmp_path), ZOO_APT_GET=str(apt))
    assert done.returncode == 1
    assert "could not install" in done.stderr or "needs Chromium" in done.stderr


@pytest.mark.parametrize("script", ["tests/install_browser.sh", ".ci/run"])
def test_the_scripts_parse(script):
    assert subprocess.run(["bash", "-n", str(ROOT / script)]).returncode == 0
