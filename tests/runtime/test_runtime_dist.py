"""The torch-free distribution: one pip command into a fresh virtualenv, no torch, predict and serve work."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import zoo

DIST = Path(__file__).resolve().parents[2] / "packaging" / "zoo-runtime"
MAX_MB = 250


def _size_mb(root: Path) -> float:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink():
                total += path.stat().st_size
    return total / 1e6


def test_zoo_runtime_installs_alone_without_torch_and_predicts_and_serves(exported, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    install = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check",
                              str(DIST)], env=env, capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]

    listed = subprocess.run([str(bin_dir / "python"), "-m", "pip", "list", "--format", "json"], env=env,
                            capture_output=True, text=True, check=True)
    names = {row["name"].lower() for row in json.loads(listed.stdout)}
    assert "zoo-runtime" in names and "onnxruntime" in names
    assert not {n for n in names if n in ("torch", "torchvision", "timm", "pluggy") or n.startswith("nvidia")}
    no_torch = subprocess.run([str(bin_dir / "python"), "-c", "import torch"], env=env, capture_output=True, text=True)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    assert _size_mb(venv) < MAX_MB

    version = subprocess.run([str(bin_dir / "python"), "-c", "from importlib.metadata import version; print(version('zoo-runtime'))"],
                             env=env, capture_output=True, text=True, check=True)
    assert version.stdout.strip() == zoo.__version__  # the two distributions are released together

    image = sorted(exported["images"].rglob("*.png"))[0]
    predicted = subprocess.run([str(bin_dir / "zoo-runtime"), "predict", str(exported["onnx"]), str(image), "--json", "-k", "1"],
                               env=env, capture_output=True, text=True, cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["predictions"][0]["top"][0]["label"] in {"red", "green", "blue"}
    missing = subprocess.run([str(bin_dir / "zoo-runtime"), "predict", str(tmp_path / "none.onnx"), str(image)],
                             env=env, capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode == 1 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr

    server = subprocess.Popen([str(bin_dir / "zoo-runtime"), "serve", str(exported["onnx"]), "--port", "0"],
                              env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        url = None
        for line in server.stderr:
            found = re.search(r"on (http://\S+/)", line)
            if found:
                url = found.group(1)
                break
        assert url, "zoo-runtime serve did not start"
        request = urllib.request.Request(url + "v1/models/model/predict", data=image.read_bytes())
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert json.loads(answer.read())["top"][0]["label"] in {"red", "green", "blue"}
    finally:
        server.terminate()
        server.wait(timeout=60)
        server.stderr.close()
