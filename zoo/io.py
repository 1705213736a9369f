"""The checkpoint *format* on disk: atomic writes, and reading configs and weights.

Everything here is plain file I/O below the model layer, so the pretrained
weight lookup, the checkpoint module and plugins (an exporter writing its
file) can share one implementation of "write to a temporary name, flush,
rename into place" and of reading a zoo ``.safetensors`` header.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from zoo.errors import CheckpointError

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
STATE_FILE = "training_state.pt"
METADATA_KEY = "zoo_config"


# -- writing -------------------------------------------------------------------


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON through a temporary file and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, default=_json_default)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        publish_mode(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result to ``path`` only if it succeeded."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        fsync_file(Path(tmp))
        publish_mode(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish_mode(path: Path, directory: bool = False) -> None:
    """mkstemp/mkdtemp create private files; give the result the usual permissions."""
    try:
        os.chmod(path, (0o777 if directory else 0o666) & ~_umask())
    except OSError:
        pass


def fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not supported everywhere (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def swap_into_place(tmp: Path, path: Path) -> None:
    # Directories cannot be replaced in one rename; the old one is moved aside
    # first and load_checkpoint falls back to it if we die in between.
    backup = path.with_name(f".{path.name}.old")
    if backup.exists():
        shutil.rmtree(backup)
    if path.exists():
        os.rename(path, backup)
    os.rename(tmp, path)
    fsync_dir(path.parent)
    if backup.exists():
        shutil.rmtree(backup, ignore_errors=True)


# -- reading -------------------------------------------------------------------


def resolve_checkpoint_dir(path: str | os.PathLike) -> Path:
    """The directory to read, recovering from a swap that was interrupted."""
    path = Path(path)
    if path.is_dir():
        return path
    backup = path.with_name(f".{path.name}.old")
    if backup.is_dir():
        return backup
    if path.exists():
        return path
    raise CheckpointError(f"checkpoint {str(path)!r} does not exist")


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """The config of a checkpoint directory or of a zoo ``.safetensors`` file."""
    path = resolve_checkpoint_dir(path)
    if path.is_file():
        return _config_from_safetensors(path)
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise CheckpointError(f"{str(path)!r} is not a zoo checkpoint: it has no {CONFIG_FILE}")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {config_path}: {exc}") from None
    if not isinstance(config, dict) or "architecture" not in config:
        raise CheckpointError(f"{config_path} is not a zoo checkpoint config (no 'architecture')")
    return config_from_disk(config)


def config_to_disk(config: dict[str, Any]) -> dict[str, Any]:
    """config.json as written: for a model timm builds, ``architecture`` is timm's name (what
    ``timm.create_model("local-dir:CKPT")`` reads) and zoo's is kept as ``zoo_architecture``."""
    if "timm_architecture" not in config:
        return config
    out = {k: v for k, v in config.items() if k != "timm_architecture"}
    out["architecture"], out["zoo_architecture"] = config["timm_architecture"], config["architecture"]
    return out


def config_from_disk(config: dict[str, Any]) -> dict[str, Any]:
    """The in-memory config (``architecture``: zoo's name) of a config.json, old or new."""
    if "zoo_architecture" not in config:
        return config
    out = {k: v for k, v in config.items() if k != "zoo_architecture"}
    out["architecture"], out["timm_architecture"] = config["zoo_architecture"], config["architecture"]
    return out


def _config_from_safetensors(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:
        raise CheckpointError(f"{str(path)!r} is not a readable safetensors file: {exc}") from None
    if METADATA_KEY not in meta:
        raise CheckpointError(
            f"{str(path)!r} has no zoo metadata; load it with --weights into a named architecture instead"
        )
    return json.loads(meta[METADATA_KEY])


def load_state_dict(path: str | os.PathLike) -> dict[str, Any]:
    """The weights of a checkpoint directory or ``.safetensors`` file."""
    from safetensors.torch import load_file

    path = resolve_checkpoint_dir(path)
    weights = path if path.is_file() else path / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{str(path)!r} has no {WEIGHTS_FILE}")
    try:
        return load_file(str(weights))
    except Exception as exc:
        raise CheckpointError(f"cannot read weights {str(weights)!r}: {exc}") from None
