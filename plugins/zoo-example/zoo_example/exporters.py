"""The ``torchscript`` export format."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def export_torchscript(model: Any, config: dict, out_dir: str | Path, **options: Any) -> Path:
    """Trace ``model`` at its input size and save it as ``model.pt`` in ``out_dir``."""
    import torch

    from zoo.io import atomic_write

    model.eval()
    example = torch.zeros(1, *config["input_size"])
    with torch.no_grad():
        traced = torch.jit.trace(model, example)
    return atomic_write(Path(out_dir) / "model.pt", lambda tmp: traced.save(str(tmp)))
