"""Reading and writing checkpoint directories: the one place that does.

A checkpoint is a directory::

    model.safetensors   the weights (the config is repeated in its header)
    config.json         architecture, kwargs, classes, preprocessing, metrics, versions
    training_state.pt   optimizer/scheduler/epoch state for --resume (optional)

Directories are written under a temporary name, flushed to disk and renamed
into place, so a reader sees the old checkpoint or the new one, never a mix.
Nothing is ever unpickled with code: weights come from safetensors and
``training_state.pt`` is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from zoo.errors import CheckpointError

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
STATE_FILE = "training_state.pt"
METADATA_KEY = "zoo_config"

# Config entries that rebuild what create_model alone cannot (a swapped head,
# an autoencoder's encoder as backbone): "type" -> "module:function" taking
# (model_or_none, entry_dict) and returning the model. Filled by zoo.transfer.
ADAPTERS: dict[str, str] = {}


# -- config --------------------------------------------------------------------


def make_config(
    model: Any,
    *,
    class_names: list[str] | None = None,
    mean: tuple[float, ...] | list[float] | None = None,
    std: tuple[float, ...] | list[float] | None = None,
    input_size: tuple[int, int, int] | list[int] | None = None,
    train_args: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The config.json for ``model`` (built by :func:`zoo.create_model`)."""
    arch = getattr(model, "zoo_arch", None)
    if not arch:
        raise CheckpointError("model was not built by zoo.create_model, so its architecture is unknown")
    from zoo import __version__
    from zoo.registry import get_spec

    spec = get_spec(arch["name"])
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:  # pragma: no cover - checkpoints are written with torch
        torch_version = None
    num_classes = int(arch["num_classes"])
    config: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "architecture": arch["name"],
        "model_kwargs": dict(arch.get("kwargs", {})),
        "num_classes": num_classes,
        "in_chans": int(arch["in_chans"]),
        "class_names": list(class_names) if class_names is not None else [str(i) for i in range(num_classes)],
        "mean": list(mean if mean is not None else spec.mean),
        "std": list(std if std is not None else spec.std),
        "input_size": list(input_size if input_size is not None else (arch["in_chans"], *spec.input_size[1:])),
        "adapters": list(getattr(model, "zoo_adapters", [])),
        "train_args": dict(train_args or {}),
        "metrics": dict(metrics or {}),
        "versions": {"zoo": __version__, "torch": torch_version},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    config.update(extra)
    return config


def build_model(config: Mapping[str, Any]):
    """Rebuild the (untrained) model a config describes."""
    from zoo._lazy import resolve
    from zoo.factory import create_model

    try:
        name = config["architecture"]
        model = create_model(
            name,
            num_classes=int(config["num_classes"]),
            in_chans=int(config.get("in_chans", config.get("input_size", [3])[0])),
            **dict(config.get("model_kwargs", {})),
        )
    except KeyError as exc:
        raise CheckpointError(f"checkpoint config lacks {exc.args[0]!r}; is it a zoo checkpoint?") from None
    for entry in config.get("adapters", []):
        kind = entry.get("type")
        if kind not in ADAPTERS:
            _load_adapters()
        if kind not in ADAPTERS:
            raise CheckpointError(f"checkpoint uses unknown adapter {kind!r}; is this zoo too old for it?")
        model = resolve(ADAPTERS[kind])(model, entry)
    return model


def _load_adapters() -> None:
    try:
        import zoo.transfer  # noqa: F401  (registers its adapters)
    except ImportError:
        pass


# -- writing -------------------------------------------------------------------


def state_dict_for_saving(model: Any) -> dict[str, Any]:
    """Contiguous CPU copies, so tied weights (shared storage) save too."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def save_checkpoint(
    path: str | os.PathLike,
    model: Any,
    config: Mapping[str, Any],
    *,
    training_state: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` and ``config`` to the directory ``path``, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        weights = tmp / WEIGHTS_FILE
        save_file(state_dict_for_saving(model), str(weights), metadata={METADATA_KEY: json.dumps(config)})
        _fsync(weights)
        write_json(tmp / CONFIG_FILE, config)
        if training_state is not None:
            import torch

            state_path = tmp / STATE_FILE
            with open(state_path, "wb") as fh:
                torch.save(dict(training_state), fh)
                fh.flush()
                os.fsync(fh.fileno())
        for child in tmp.iterdir():
            _publish_mode(child)
        _publish_mode(tmp, directory=True)
        _fsync_dir(tmp)
        _swap_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _swap_into_place(tmp: Path, path: Path) -> None:
    # Directories cannot be replaced in one rename; the old one is moved aside
    # first and load_checkpoint falls back to it if we die in between.
    backup = path.with_name(f".{path.name}.old")
    if backup.exists():
        shutil.rmtree(backup)
    if path.exists():
        os.rename(path, backup)
    os.rename(tmp, path)
    _fsync_dir(path.parent)
    if backup.exists():
        shutil.rmtree(backup, ignore_errors=True)


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
        _publish_mode(Path(tmp))
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
        _fsync(Path(tmp))
        _publish_mode(Path(tmp))
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


def _publish_mode(path: Path, directory: bool = False) -> None:
    """mkstemp/mkdtemp create private files; give the result the usual permissions."""
    try:
        os.chmod(path, (0o777 if directory else 0o666) & ~_umask())
    except OSError:
        pass


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
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
    return config


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


def load_checkpoint(path: str | os.PathLike, *, map_location: str = "cpu"):
    """Rebuild the model of a checkpoint and load its weights. Returns ``(model, config)``."""
    config = load_config(path)
    model = build_model(config)
    state = load_state_dict(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(
            f"weights in {str(path)!r} do not fit {config['architecture']}: {first[1].strip() if len(first) > 1 else first[0]}"
        ) from None
    model.to(map_location)
    model.eval()
    model.zoo_config = config
    return model, config


def load_training_state(path: str | os.PathLike) -> dict[str, Any] | None:
    """Optimizer/scheduler state saved for --resume, or None when there is none."""
    import torch

    state_path = resolve_checkpoint_dir(path) / STATE_FILE
    if not state_path.is_file():
        return None
    try:
        return torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read training state {str(state_path)!r}: {exc}") from None


def load(path: str | os.PathLike, *, map_location: str = "cpu"):
    """``zoo.load``: the model stored in a checkpoint directory or zoo ``.safetensors`` file."""
    model, _ = load_checkpoint(path, map_location=map_location)
    return model
