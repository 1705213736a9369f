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
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from zoo.errors import CheckpointError, OutputExistsError

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


# -- output folders: a second run never destroys the first --------------------

# What makes a folder hold a training run: its checkpoints (or the backups an
# interrupted swap leaves) and its metrics.
RUN_ENTRIES = ("best", "last", ".best.old", ".last.old", "metrics.jsonl", "metrics.csv")
RUN_WAY_OUT = ("continue it with --resume, write to another --out, or pass --overwrite to move it aside"
               " (Python: resume=..., another out=, or overwrite=True)")


def run_entries(out: str | os.PathLike) -> list[str]:
    """The names in ``out`` that belong to a training run (empty when it holds none)."""
    out = Path(out)
    if not out.is_dir():
        return []
    return [name + ("/" if (out / name).is_dir() else "") for name in RUN_ENTRIES if (out / name).exists()]


def export_entries(out: str | os.PathLike, name: str) -> list[str]:
    """The files of an export named ``name`` in ``out`` (``name.onnx``, ``name.int8.onnx``, ...)."""
    out = Path(out)
    if not out.is_dir():
        return []
    return sorted(p.name for p in out.iterdir() if p.name.startswith(f"{name}."))


def claim_output(out: str | os.PathLike, found: list[str], *, what: str, way_out: str, overwrite: bool,
                 whole: bool = True, log: Callable[[str], None] | None = None) -> Path | None:
    """The one rule for output folders: ``out`` holding ``found`` is refused, or moved aside with ``overwrite``.

    Moving aside renames ``out`` (``whole``), or only the ``found`` entries,
    to a fresh sibling ``<out>.old-<time>``, says where on ``log`` (stderr by
    default) and returns it; nothing is deleted. Returns None when ``found``
    is empty.
    """
    if not found:
        return None
    out = Path(out)
    found = [name.rstrip("/") for name in found]
    if not overwrite:
        refuse_output(out, found, what=what, way_out=way_out)
    # Renaming the working directory (zoo train --out .) would carry the new run away with it.
    cwd_inside = Path.cwd().resolve().is_relative_to(out.resolve())
    target = move_aside(out, None if whole and not cwd_inside else found)
    (log or _stderr)(f"zoo: --overwrite: moved {what} in {out} aside to {target}")
    return target


def refuse_output(out: str | os.PathLike, found: list[str], *, what: str, way_out: str) -> None:
    """Raise :class:`OutputExistsError` when ``out`` holds ``found``: the message lists them and the ways out."""
    if not found:
        return
    out = Path(out)
    names = [name.rstrip("/") for name in found]
    listing = ", ".join(name + ("/" if (out / name).is_dir() else "") for name in names[:4])
    listing += ", ..." if len(names) > 4 else ""
    raise OutputExistsError(f"{out} already holds {what} ({listing}); {way_out}")


def claim_run_dir(out: str | os.PathLike | None, *, resume: str | os.PathLike | None = None,
                  overwrite: bool = False, main: bool | None = None,
                  log: Callable[[str], None] | None = None) -> Path | None:
    """Refuse a training ``out`` that holds a run unless ``resume`` continues it or ``overwrite`` moves it aside.

    Resuming a checkpoint kept elsewhere into a folder holding another run is
    refused the same way. Only the main process (``main``; torchrun's
    ``RANK`` 0 by default) moves anything. Returns the aside folder, if any.
    """
    if out is None:
        return None
    out = Path(out)
    found = run_entries(out)
    if main is None:
        main = os.environ.get("RANK", "0") == "0"
    if resume is not None and Path(resume).resolve().is_relative_to(out.resolve()):
        if overwrite:
            raise OutputExistsError(
                f"--overwrite would move aside {out}, whose checkpoint --resume {resume} continues; drop one of them"
            )
        return None
    if overwrite and not main:
        return None
    what = "an earlier run" if resume is None else f"a run other than the one --resume {resume} continues"
    return claim_output(out, found, what=what, way_out=RUN_WAY_OUT, overwrite=overwrite, log=log)


def move_aside(path: str | os.PathLike, entries: list[str] | None = None) -> Path:
    """Rename ``path`` (or only ``entries`` inside it) to a new ``<path>.old-<time>`` beside it; returns that."""
    path = Path(os.path.abspath(path))  # "." has no name to put beside it
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = path.with_name(f"{path.name}.old-{stamp}"), 1
    while target.exists() or target.is_symlink():
        n += 1
        target = path.with_name(f"{path.name}.old-{stamp}-{n}")
    if entries is None:
        os.rename(path, target)
    else:
        target.mkdir()
        for name in entries:
            os.rename(path / name, target / name)
    fsync_dir(path.parent)
    return target


def publish_folder(tmp: str | os.PathLike, out: str | os.PathLike, stale: list[str] | None = None,
                   log: Callable[[str], None] | None = None, what: str = "the earlier export") -> Path | None:
    """Put the files written in ``tmp`` into ``out``: a rename when ``out`` does not exist yet.

    Otherwise the ``stale`` entries of ``out`` are first moved aside (see
    :func:`claim_output`), then each file renamed in, so ``out`` never
    holds new files beside stale ones. ``tmp`` must be on ``out``'s file
    system. Returns the aside folder, if any.
    """
    tmp, out = Path(tmp), Path(out)
    if not out.exists():
        publish_mode(tmp, directory=True)
        os.rename(tmp, out)
        fsync_dir(out.parent)
        return None
    aside = claim_output(out, list(stale or []), what=what, way_out="", overwrite=True, whole=False, log=log)
    for child in sorted(tmp.iterdir()):
        os.replace(child, out / child.name)
    tmp.rmdir()
    fsync_dir(out)
    return aside


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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
