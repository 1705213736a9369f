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
from typing import Any, Mapping

from zoo._lazy import resolve
from zoo.errors import CheckpointError, UnknownModelError
from zoo.factory import create_model
from zoo.io import (
    CONFIG_FILE,
    config_to_disk,
    FORMAT_VERSION,
    METADATA_KEY,
    STATE_FILE,
    WEIGHTS_FILE,
    fsync_dir,
    fsync_file,
    load_config,
    load_state_dict,
    publish_mode,
    resolve_checkpoint_dir,
    swap_into_place,
    write_json,
)
from zoo.plugins import get_manager, get_spec, provider
from zoo.registry import model_info
from zoo.text import describe, detail_line

# Config entries that rebuild what create_model alone cannot (a swapped head):
# "type" -> "module:function" taking (model, entry_dict) and returning the
# wrapped model. A table of references, like a ModelSpec's builder, so this
# module never imports the layers that define them.
ADAPTERS: dict[str, str] = {
    "head": "zoo.transfer.heads:rebuild_head",
}


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
    info = model_info(model)
    if info is None:
        raise CheckpointError("model was not built by zoo.create_model, so its architecture is unknown")
    from zoo import __version__

    spec = get_spec(info.name)
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:  # pragma: no cover - checkpoints are written with torch
        torch_version = None
    num_classes = int(info.num_classes)
    config: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "architecture": info.name,
        "provided_by": provider(spec),  # the plugin and distribution to install if it goes missing
        "model_kwargs": dict(info.kwargs),
        "num_classes": num_classes,
        "in_chans": int(info.in_chans),
        "class_names": list(class_names) if class_names is not None else [str(i) for i in range(num_classes)],
        "mean": list(mean if mean is not None else spec.mean),
        "std": list(std if std is not None else spec.std),
        "input_size": list(input_size if input_size is not None else (info.in_chans, *spec.input_size[1:])),
        "adapters": list(info.adapters),
        "train_args": dict(train_args or {}),
        "metrics": dict(metrics or {}),
        "versions": {"zoo": __version__, "torch": torch_version},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    config.update(timm_keys(info, spec, config))
    config.update(extra)
    return config


# -- timm's local-folder keys ------------------------------------------------------

TIMM_MODULE = "zoo.models.timm_models"


def timm_architecture(spec: Any) -> str | None:
    """timm's name for the model a spec builds, when timm builds it as it is (``timm/<name>``, resnet18, ...)."""
    module, _, function = spec.builder.partition(":")
    if module != TIMM_MODULE:
        return None
    if function == "timm_model":
        return str(spec.kwargs.get("arch")) if spec.kwargs.get("arch") else None
    import timm

    return function if timm.is_model(function) else None  # vit_cifar_patch4_32 is zoo's own


def timm_keys(info: Any, spec: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """What ``timm.create_model("local-dir:CKPT")`` reads, for a model timm builds (none after a head swap).

    In memory ``architecture`` stays zoo's name and timm's is ``timm_architecture``; on disk
    (:func:`zoo.io.config_to_disk`) ``architecture`` is timm's and zoo's moves to ``zoo_architecture``.
    """
    arch = timm_architecture(spec)
    if arch is None or info.adapters:
        return {}
    args = {k: v for k, v in dict(info.kwargs).items() if k not in ("num_classes", "pretrained")}
    if int(info.in_chans) != 3:
        args["in_chans"] = int(info.in_chans)
    return {
        "timm_architecture": arch,
        "model_args": args,
        "label_names": list(config["class_names"]),
        "pretrained_cfg": {
            "input_size": list(config["input_size"]), "mean": list(config["mean"]), "std": list(config["std"]),
            "num_classes": int(config["num_classes"]), "interpolation": "bilinear", "crop_pct": 1.0,
            "first_conv": spec.first_conv, "classifier": spec.classifier,
        },
    }


def build_model(config: Mapping[str, Any]):
    """Rebuild the (untrained) model a config describes."""
    try:
        name = config["architecture"]
        model = create_model(
            name,
            num_classes=int(config["num_classes"]),
            in_chans=int(config.get("in_chans", config.get("input_size", [3])[0])),
            **dict(config.get("model_kwargs", {})),
        )
    except UnknownModelError as exc:  # a KeyError too: caught first, it is no missing config entry
        raise CheckpointError(_unknown_architecture(config, exc)) from None
    except KeyError as exc:
        raise CheckpointError(f"checkpoint config lacks {exc.args[0]!r}; is it a zoo checkpoint?") from None
    for entry in config.get("adapters", []):
        kind = entry.get("type")
        if kind not in ADAPTERS:
            raise CheckpointError(f"checkpoint uses unknown adapter {kind!r}; is this zoo too old for it?")
        try:
            adapter = resolve(ADAPTERS[kind])
        except ImportError as exc:  # a broken install, not an old zoo: say what is missing
            raise CheckpointError(
                f"checkpoint uses adapter {kind!r} ({ADAPTERS[kind]}), which cannot be imported: {describe(exc)}"
            ) from None
        model = adapter(model, entry)
    return model


def _unknown_architecture(config: Mapping[str, Any], exc: Exception) -> str:
    """Why a checkpoint's architecture is not registered, and what to install or enable."""
    name = config.get("architecture")
    by = config.get("provided_by") or {}
    plugin, dist = by.get("plugin"), by.get("distribution")
    if not plugin or dist == "zoo":
        return f"checkpoint's architecture {name!r} is not registered here: {exc}"
    info = get_manager().plugins.get(plugin)
    what = f"plugin {plugin!r} of the distribution {dist!r}" if dist else f"plugin {plugin!r}"
    if info is None:
        hint = f"install {dist}" + (f" (it was {by['version']})" if by.get("version") else "") if dist else (
            "install the distribution that provides it")
        return f"checkpoint's architecture {name!r} comes from the {what}, which is not installed; {hint}"
    if info.skipped:
        return f"checkpoint's architecture {name!r} comes from the {what}, which is disabled (ZOO_PLUGINS, --no-plugins)"
    if info.errors:
        return f"checkpoint's architecture {name!r} comes from the {what}, which failed to load: {info.errors[0]}"
    return f"checkpoint's architecture {name!r} is not registered by the {what} any more: {exc}"
LOCAL_DIR = "local-dir:"  # timm's prefix for a model folder; zoo finetune takes it as a source


def timm_folder_config(path: str | os.PathLike) -> dict[str, Any] | None:
    """The config.json of a folder timm saved (or a Hugging Face snapshot of a timm model); None for a zoo
    checkpoint or anything else."""
    file = Path(path) / CONFIG_FILE
    if not Path(path).is_dir() or not file.is_file():
        return None
    try:
        raw = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    zoo_keys = ("zoo_architecture", "format_version", "model_kwargs")
    if not isinstance(raw, dict) or "architecture" not in raw or any(k in raw for k in zoo_keys):
        return None
    return raw


def load_timm_folder(path: str | os.PathLike):
    """The model and zoo config of a timm model folder (``model.safetensors`` or ``pytorch_model.bin`` beside
    timm's config.json), built as ``timm/<architecture>``. Returns ``(model, config)``."""
    raw = timm_folder_config(path)
    if raw is None:
        raise CheckpointError(f"{str(path)!r} is not a timm model folder (config.json with timm's 'architecture')")
    cfg = dict(raw.get("pretrained_cfg") or {k: v for k, v in raw.items() if k != "architecture"})
    args = dict(raw.get("model_args") or {})
    num_classes = int(args.pop("num_classes", raw.get("num_classes", cfg.get("num_classes", 1000))))
    in_chans = int(args.pop("in_chans", (cfg.get("input_size") or [3])[0]))
    model = create_model(f"timm/{raw['architecture']}", num_classes=num_classes, in_chans=in_chans, **args)
    try:
        model.load_state_dict(_timm_weights(Path(path)), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"weights in {str(path)!r} do not fit timm's {raw['architecture']}: {detail_line(exc)}") from None
    names = raw.get("label_names") or cfg.get("label_names")
    config = make_config(model, class_names=list(names) if names and len(names) == num_classes else None,
                         mean=cfg.get("mean"), std=cfg.get("std"), input_size=cfg.get("input_size"))
    model.eval()
    model_info(model).config = config
    return model, config


def _timm_weights(folder: Path) -> dict[str, Any]:
    if (folder / WEIGHTS_FILE).is_file():
        return load_state_dict(folder)
    for name in ("pytorch_model.bin", "pytorch_model.pth"):
        if (folder / name).is_file():
            import torch

            try:
                return torch.load(folder / name, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise CheckpointError(f"cannot read weights {str(folder / name)!r}: {detail_line(exc)}") from None
    raise CheckpointError(f"{str(folder)!r} has no {WEIGHTS_FILE} or pytorch_model.bin")


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
        fsync_file(weights)
        write_json(tmp / CONFIG_FILE, config_to_disk(config))
        if training_state is not None:
            import torch

            state_path = tmp / STATE_FILE
            with open(state_path, "wb") as fh:
                torch.save(dict(training_state), fh)
                fh.flush()
                os.fsync(fh.fileno())
        for child in tmp.iterdir():
            publish_mode(child)
        publish_mode(tmp, directory=True)
        fsync_dir(tmp)
        swap_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, *, map_location: str = "cpu"):
    """Rebuild the model of a checkpoint and load its weights. Returns ``(model, config)``."""
    config = load_config(path)
    model = build_model(config)
    state = load_state_dict(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"weights in {str(path)!r} do not fit {config['architecture']}: {detail_line(exc)}") from None
    model.to(map_location)
    model.eval()
    model_info(model).config = config
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
