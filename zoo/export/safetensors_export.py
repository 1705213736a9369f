"""A single ``.safetensors`` file that rebuilds its model: weights plus the config in the header.

The config sits under the header key ``zoo_config`` (as in checkpoints), so
``zoo.load(path)`` reads it as JSON, rebuilds the architecture from the
registry and loads the tensors: nothing in the file is ever executed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from zoo.errors import ExportError


def export_safetensors(
    model: Any,
    config: dict[str, Any],
    out_dir: str | os.PathLike,
    *,
    name: str = "model",
    log: Any = None,
    **_ignored: Any,
) -> Path:
    """Write ``out_dir/name.safetensors`` atomically and check that it loads back."""
    from safetensors.torch import save_file

    from zoo import __version__
    from zoo.checkpoint import state_dict_for_saving
    from zoo.io import METADATA_KEY, atomic_write

    config = dict(config)
    config["versions"] = {**dict(config.get("versions") or {}), "zoo": __version__}
    # Plain header keys too, so tools that never parse zoo_config still see the essentials.
    header = {
        METADATA_KEY: json.dumps(config),
        "format": "pt",
        "architecture": str(config.get("architecture")),
        "num_classes": str(config.get("num_classes")),
    }
    state = state_dict_for_saving(model)  # clones, so tied weights save as separate tensors
    path = Path(out_dir) / f"{name}.safetensors"

    def write(tmp: Path) -> None:
        save_file(state, str(tmp), metadata=header)
        _check_roundtrip(tmp, state)

    atomic_write(path, write)
    if log:
        log(f"{path}: {len(state)} tensors, {path.stat().st_size / 1e6:.1f} MB")
    return path


def _check_roundtrip(path: Path, state: dict[str, Any]) -> None:
    import torch
    from safetensors.torch import load_file

    loaded = load_file(str(path))
    if loaded.keys() != state.keys() or any(not torch.equal(loaded[k], state[k]) for k in state):
        raise ExportError(f"{path.name} does not read back the weights that were written")
