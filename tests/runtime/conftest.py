"""Fixtures for the runtime tests: one small exported model, images, a torch blocker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

CLASSES = ("red", "green", "blue")

# Importing any of these raises ImportError in processes started with blocked_env().
BLOCKER = textwrap.dedent(
    """
    import sys

    BLOCKED = {blocked!r}

    class _Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is blocked in this test")
            return None

    sys.meta_path.insert(0, _Blocker())
    """
)


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """A trained-looking `net` checkpoint, its ONNX export and an image folder."""
    import zoo
    from zoo import checkpoint
    from zoo.export import export
    from zoo.testing import make_image_folder

    root = tmp_path_factory.mktemp("exported")
    images = make_image_folder(root / "images", CLASSES, per_class=3, size=36)
    model = zoo.create_model("net", num_classes=len(CLASSES))
    config = checkpoint.make_config(model, class_names=list(CLASSES))
    checkpoint.save_checkpoint(root / "ckpt", model, config)
    written = export(root / "ckpt", ["onnx", "safetensors"], root / "out")
    return {"root": root, "ckpt": root / "ckpt", "onnx": written["onnx"], "safetensors": written["safetensors"], "images": images}


@pytest.fixture
def blocked_env(tmp_path):
    """``blocked_env(names)``: environment for a subprocess in which importing ``names`` fails."""

    def make(blocked: tuple[str, ...] = ("torch", "torchvision", "timm")) -> dict[str, str]:
        site = tmp_path / f"blocker-{'-'.join(blocked)}"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=set(blocked)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        return env

    return make


@pytest.fixture
def python() -> str:
    return sys.executable


@pytest.fixture
def start_server():
    """``start_server(*args)``: ``zoo serve ARGS`` on a free port -> (process, base URL); stopped afterwards."""
    started: list[subprocess.Popen] = []

    def start(*args: str) -> tuple[subprocess.Popen, str]:
        proc = subprocess.Popen([sys.executable, "-m", "zoo", "serve", *args, "--port", "0"],
                                stderr=subprocess.PIPE, text=True)
        started.append(proc)
        lines = []
        for line in proc.stderr:
            lines.append(line)
            found = re.search(r"on (http://\S+/)", line)
            if found:
                return proc, found.group(1)
        raise AssertionError("zoo serve did not start: " + "".join(lines))

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
        proc.stderr.close()
