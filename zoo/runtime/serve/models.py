"""The models a server holds: each an ONNX file, a name, a version and a batcher."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import RuntimeInputError
from ..model import OnnxModel
from .batcher import Batcher

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class ServedModel:
    """One model behind the server: what ``/v1`` and ``/v2`` describe and run."""

    name: str
    version: str
    model: OnnxModel
    batcher: Batcher | None = field(default=None, repr=False)

    @property
    def generic(self) -> bool:
        """True when the file carried no zoo metadata and defaults were guessed."""
        return bool(self.model.guessed)

    @property
    def num_outputs(self) -> int | None:
        shape = self.model.session.get_outputs()[0].shape
        last = shape[-1] if shape else None
        return last if isinstance(last, int) else None

    def describe(self) -> dict[str, Any]:
        pre = self.model.preprocessing
        return {
            "name": self.name,
            "version": self.version,
            "task": self.model.task,
            "input_size": list(pre.input_size),
            "labels": self.model.labels,
            "num_classes": len(self.model.labels) if self.model.labels else self.num_outputs,
            "providers": self.model.providers,
            "generic": self.generic,
            "guessed": list(self.model.guessed),
        }

    def v2_metadata(self) -> dict[str, Any]:
        """The Open Inference Protocol's model metadata."""
        out = self.model.session.get_outputs()[0]
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": self.model.input_name, "datatype": "FP32", "shape": [-1, *self.model.preprocessing.input_size]}],
            "outputs": [{"name": out.name, "datatype": "FP32", "shape": [d if isinstance(d, int) else -1 for d in out.shape]}],
        }


def parse_model_args(args: Sequence[str]) -> list[tuple[str, Path]]:
    """``model.onnx`` or ``NAME=model.onnx`` -> (name, path); names are checked and unique."""
    out: list[tuple[str, Path]] = []
    for arg in args:
        name, sep, path = arg.partition("=")
        if not sep or not name or Path(arg).is_file():
            name, path = Path(arg).stem, arg
        if not _NAME.match(name):
            raise RuntimeInputError(
                f"model name {name!r} is not usable in a URL; name it with NAME=FILE (letters, digits, . _ -)"
            )
        if any(name == seen for seen, _ in out):
            raise RuntimeInputError(f"two models are named {name!r}; name them apart with NAME=FILE, e.g. a={path}")
        out.append((name, Path(path)))
    if not out:
        raise RuntimeInputError("give at least one .onnx model to serve")
    return out


def file_version(path: Path) -> str:
    """The first 12 hex digits of the file's SHA-256: changes whenever the model does."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def load_models(args: Sequence[str], *, provider: str = "auto", threads: int | None = None) -> list[ServedModel]:
    """Open every model now, so a bad file stops the server before it listens."""
    served = []
    for name, path in parse_model_args(args):
        if not path.is_file():
            raise RuntimeInputError(f"model file {str(path)!r} does not exist")
        # no spinning: idle ONNX Runtime threads would busy-wait on the cores that decode the next requests
        model = OnnxModel(path, provider=provider, threads=threads, generic=True, spinning=False)
        served.append(ServedModel(name=name, version=file_version(path), model=model))
    return served
