"""The runtime needs no torch: proven in subprocesses where importing torch fails."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import zoo.runtime

PREDICT = textwrap.dedent(
    """
    import json, sys
    {import_line}
    model = runtime.load(sys.argv[1], provider="auto")
    preds = model.predict([sys.argv[2]], top_k=2)
    arr = model.predict_array(model.preprocessing.load_batch([p.source for p in preds][:2]))
    print(json.dumps({{"n": len(preds), "labels": model.labels, "first": preds[0].to_dict(),
                       "array": len(arr), "torch": "torch" in sys.modules}}))
    """
)


def _run(code: str, args: list[str], env: dict[str, str], cwd: Path | None = None) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_blocker_really_blocks_torch(blocked_env):
    done = subprocess.run([sys.executable, "-c", "import torch"], env=blocked_env(), capture_output=True, text=True)
    assert done.returncode != 0 and "blocked" in done.stderr


def test_runtime_predicts_without_torch(exported, blocked_env):
    out = _run(PREDICT.format(import_line="from zoo import runtime"), [str(exported["onnx"]), str(exported["images"])], blocked_env())
    assert out["n"] == 9 and out["labels"] == ["red", "green", "blue"] and out["array"] == 2
    assert out["torch"] is False


def test_zoo_predict_on_onnx_without_torch(exported, blocked_env):
    code = "import sys; from zoo.cli import main; main(sys.argv[1:])"
    done = subprocess.run(
        [sys.executable, "-c", code, "predict", str(exported["onnx"]), str(exported["images"]), "--json", "-k", "1"],
        env=blocked_env(), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["predictions"]
    assert len(rows) == 9 and rows[0]["top"][0]["label"] in {"red", "green", "blue"}


def test_a_copy_of_the_package_runs_with_only_numpy_pillow_onnxruntime(exported, blocked_env, tmp_path):
    """docs/deploy.md's minimal service: zoo/runtime copied alone, zoo itself (and pluggy) unavailable."""
    app = tmp_path / "service"
    shutil.copytree(Path(zoo.runtime.__file__).parent, app / "zoo_runtime", ignore=shutil.ignore_patterns("__pycache__"))
    env = blocked_env(("torch", "torchvision", "timm", "zoo", "pluggy", "click", "safetensors", "onnx"))
    out = _run(PREDICT.format(import_line="import zoo_runtime as runtime"), [str(exported["onnx"]), str(exported["images"])], env, cwd=app)
    assert out["n"] == 9 and out["torch"] is False
