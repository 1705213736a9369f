"""benchmarks/device_check.sh parses, and on a machine without CUDA says so and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "device_check.sh"


def test_the_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0


def test_without_cuda_it_says_so_and_exits_0():
    # No CUDA visible, as on the CPU machines the tests run on (a GPU machine hides its GPUs the same way).
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("DEVICE_CHECK_REHEARSE", None)
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("device_check: no CUDA here") and done.stderr == ""
