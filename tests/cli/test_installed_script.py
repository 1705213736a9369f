"""The installed `zoo` console script, run as a real subprocess."""

import json
import shutil
import subprocess
import sys


def test_zoo_script_lists_models():
    exe = shutil.which("zoo")
    assert exe, "the zoo console script is not installed"
    result = subprocess.run([exe, "list", "net", "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["name"] == "net"


def test_unknown_model_exit_status_and_message():
    result = subprocess.run([shutil.which("zoo"), "info", "resnet43"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: unknown model 'resnet43'")
    assert "Traceback" not in result.stderr


PROBE = """
import sys
from zoo.cli import main
try:
    main({args!r})
except SystemExit as exc:
    assert not exc.code, exc.code
heavy = sorted(m for m in ("torch", "timm", "torchvision", "onnx", "onnxruntime") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


def _heavy_imports(args):
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_list_help_and_plugins_import_no_torch():
    assert _heavy_imports(["list"]) == "HEAVY="
    assert _heavy_imports(["list", "--all"]) == "HEAVY="
    assert _heavy_imports(["plugins"]) == "HEAVY="
    assert _heavy_imports(["--help"]) == "HEAVY="


def test_python_m_zoo_runs():
    result = subprocess.run([sys.executable, "-m", "zoo", "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("zoo ")
