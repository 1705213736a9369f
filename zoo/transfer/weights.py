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

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from zoo.errors import CheckpointError, WeightsNotFoundError, ZooError

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
        from zoo.checkpoint import load_state_dict

        return load_state_dict(path)
    if not path.is_file():
        raise CheckpointError(f"weight file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise CheckpointError(f"{str(path)!r} is not a readable safetensors file: {_first_line(exc)}") from None
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        if "weights_only" in text or "Unpickler" in text or "GLOBAL" in text or "Unsupported" in text:
            raise CheckpointError(
                f"refusing {str(path)!r}: it is a pickle that would run code when loaded;"
                " save only the state_dict (torch.save(model.state_dict(), f)) or convert it to .safetensors"
            ) from None
        raise CheckpointError(f"cannot read weight file {str(path)!r}: {_first_line(exc)}") from None
    return unwrap_state_dict(obj, path)


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


# -- key layouts ---------------------------------------------------------------

_DENSENET_OLD = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _densenet_legacy(state: dict[str, Any]) -> dict[str, Any]:
    # torchvision's DenseNet files predate module names without dots ("norm.1" -> "norm1").
    out = {}
    for key, value in state.items():
        match = _DENSENET_OLD.match(key)
        out[match.group(1) + match.group(2) if match else key] = value
    return out


# layout name -> converter applied to a file's state dict before prefix alignment.
LAYOUT_CONVERTERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "torchvision_densenet": _densenet_legacy,
}


def remap_state_dict(state: dict[str, Any], model_keys: Mapping[str, Any], layout: str = "native") -> dict[str, Any]:
    """Rename ``state``'s keys to the model's: layout converter, then prefix alignment, then order.

    ``model_keys`` maps the model's keys to tensors (its state dict). Returns
    the renamed dict; keys it cannot place are left as they were, so the
    fitting step reports them.
    """
    converter = LAYOUT_CONVERTERS.get(layout)
    if converter is not None:
        state = converter(state)
    if _overlap(state, model_keys) == len(state):
        return state
    if any(_DENSENET_OLD.match(k) for k in state):
        state = _densenet_legacy(state)
    best, best_overlap = state, _overlap(state, model_keys)
    for candidate in _prefix_variants(state, model_keys):
        overlap = _overlap(candidate, model_keys)
        if overlap > best_overlap:
            best, best_overlap = candidate, overlap
    if best_overlap < len(best):
        by_order = _match_by_order(best, model_keys)
        if by_order is not None:
            return by_order
    return best


def _overlap(state: Mapping[str, Any], model_keys: Mapping[str, Any]) -> int:
    return sum(1 for k in state if k in model_keys)


def _prefix_variants(state: dict[str, Any], model_keys: Mapping[str, Any]):
    """The file's keys with one leading component removed, or one of the model's added."""
    file_heads = {k.split(".", 1)[0] + "." for k in state if "." in k}
    model_heads = {k.split(".", 1)[0] + "." for k in model_keys if "." in k}
    for head in file_heads:  # a wrapper in the file: "model.layer1..." -> "layer1..."
        yield {(k[len(head):] if k.startswith(head) else k): v for k, v in state.items()}
    for head in model_heads:  # a wrapper in the model: "layer1..." -> "backbone.layer1..."
        yield {head + k: v for k, v in state.items()}
    for old in file_heads:
        for new in model_heads:
            if old != new:
                yield {(new + k[len(old):] if k.startswith(old) else k): v for k, v in state.items()}


def _match_by_order(state: dict[str, Any], model_keys: Mapping[str, Any]) -> dict[str, Any] | None:
    # Same tensors in the same order under other names (another library's
    # module naming): accept only when every shape lines up.
    def counters(k: str, v: Any) -> bool:  # BatchNorm's num_batches_tracked, under any name
        return k.endswith("num_batches_tracked") or (getattr(v, "ndim", 1) == 0 and not v.is_floating_point())

    model_items = [(k, v) for k, v in model_keys.items() if not counters(k, v)]
    file_items = [(k, v) for k, v in state.items() if not counters(k, v)]
    if len(file_items) != len(model_items):
        return None
    if any(tuple(fv.shape) != tuple(mv.shape) for (_, fv), (_, mv) in zip(file_items, model_items)):
        return None
    return {mk: fv for (mk, _), (_, fv) in zip(model_items, file_items)}


# -- fitting -------------------------------------------------------------------


def classifier_keys(model: Any, spec: Any = None) -> set[str]:
    """State-dict keys of the classifier: the spec's ``classifier`` module, or get_classifier()."""
    keys = set(model.state_dict())
    prefixes = []
    if spec is not None and getattr(spec, "classifier", None):
        names = spec.classifier if isinstance(spec.classifier, (list, tuple)) else [spec.classifier]
        prefixes.extend(f"{n}." for n in names)
    get = getattr(model, "get_classifier", None)
    if callable(get):
        head = get()
        for name, module in model.named_modules():
            if module is head and name:
                prefixes.append(f"{name}.")
    return {k for k in keys if any(k.startswith(p) for p in prefixes)}


def fit_state_dict(model: Any, state: dict[str, Any], spec: Any = None, *, source: str = "weights") -> dict[str, list[str]]:
    """Load ``state`` into ``model`` after checks; the classifier is kept fresh when it does not fit.

    Returns ``{"missing": [...], "dropped": [...]}`` (keys left at their
    initial values; file keys dropped). Raises :class:`CheckpointError` naming
    the first key whose shape does not match, or that one side lacks.
    """
    own = model.state_dict()
    state = remap_state_dict(state, own)
    head = classifier_keys(model, spec)
    dropped: list[str] = []
    # A classifier for another class count is dropped, as timm does.
    for key in sorted(head):
        if key in state and tuple(state[key].shape) != tuple(own[key].shape):
            dropped.extend(k for k in sorted(head) if k in state)
            for k in head:
                state.pop(k, None)
            break
    state = _adapt_first_conv(state, own, spec)
    for key, value in state.items():
        if key in own and tuple(value.shape) != tuple(own[key].shape):
            raise CheckpointError(
                f"weights from {source} do not fit {_arch_name(model)}: first mismatching key {key!r}"
                f" has shape {tuple(value.shape)} in the file, {tuple(own[key].shape)} in the model"
            )
    unexpected = [k for k in state if k not in own]
    # The file may carry a classifier the model does not have (num_classes=0).
    unexpected_body = [k for k in unexpected if not _looks_like_classifier(k, spec)]
    if unexpected_body:
        raise CheckpointError(
            f"weights from {source} do not fit {_arch_name(model)}: first mismatching key {unexpected_body[0]!r}"
            f" is not in the model ({len(unexpected_body)} such keys); is it another architecture?"
        )
    dropped.extend(unexpected)
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    missing_body = [k for k in missing if k not in head]
    if missing_body:
        raise CheckpointError(
            f"weights from {source} do not fit {_arch_name(model)}: first mismatching key {missing_body[0]!r}"
            f" is missing from the file ({len(missing_body)} keys missing)"
        )
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return {"missing": missing, "dropped": dropped}


def _adapt_first_conv(state: dict[str, Any], own: Mapping[str, Any], spec: Any) -> dict[str, Any]:
    # RGB weights into a 1-channel (or other) model: sum / repeat over input channels, as timm does.
    name = getattr(spec, "first_conv", None)
    key = f"{name}.weight" if name else None
    if not key or key not in state or key not in own:
        return state
    w, target = state[key], own[key]
    if w.ndim != 4 or w.shape[1] == target.shape[1] or w.shape[0] != target.shape[0]:
        return state
    if target.shape[1] == 1:
        new = w.sum(dim=1, keepdim=True)
    else:
        reps = -(-target.shape[1] // w.shape[1])
        new = w.repeat(1, reps, 1, 1)[:, : target.shape[1]] * (w.shape[1] / float(target.shape[1]))
    return {**state, key: new.to(w.dtype)}


def _looks_like_classifier(key: str, spec: Any) -> bool:
    names = getattr(spec, "classifier", None)
    names = names if isinstance(names, (list, tuple)) else [names] if names else []
    return any(key.startswith(f"{n}.") for n in names) or any(
        fnmatch.fnmatchcase(key, p) for p in ("fc.*", "head.*", "classifier.*", "head.fc.*")
    )


def _arch_name(model: Any) -> str:
    arch = getattr(model, "zoo_arch", None) or {}
    return arch.get("name") or type(model).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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
    """Find the file to load, trying each source in order; raise with the ways out when none has it."""
    from zoo.transfer.sources import hf_repo_dir, network_allowed, torch_hub_dir, weight_file_name

    if weights is not None:
        path = Path(weights)
        if not path.exists():
            raise CheckpointError(f"weights {str(path)!r} do not exist")
        return ResolvedWeights(path=str(path), source="checkpoint" if path.is_dir() else "file")
    pretrained = pick_weights(spec, tag)
    if allow_download is None:
        allow_download = network_allowed()
    from zoo._lazy import resolve
    from zoo.extensions import weight_sources

    for source in weight_sources():
        try:
            found = resolve(source.find)(spec, pretrained, allow_download)
        except ZooError:
            raise
        except Exception as exc:  # a broken source must not hide the others
            if source.priority >= 100:
                raise WeightsNotFoundError(f"downloading {spec.name} weights failed: {_first_line(exc)}") from None
            continue
        if found:
            return ResolvedWeights(
                path=str(found), source=source.name, tag=pretrained.tag,
                mean=pretrained.mean, std=pretrained.std, layout=pretrained.layout,
            )
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
    raise WeightsNotFoundError(
        f"pretrained weights {spec.name}.{pretrained.tag} are not on disk{offline}; either pass --weights FILE"
        f" (or a zoo checkpoint directory), or place the file at {where},"
        " or allow the network (unset ZOO_OFFLINE and HF_HUB_OFFLINE) to download it"
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
    report = fit_state_dict(model, state, spec, source=label)
    model.zoo_pretrained = {
        "path": resolved.path, "source": resolved.source, "tag": resolved.tag,
        "missing": report["missing"], "dropped": report["dropped"],
    }
    return resolved


def _checkpoint_body(path: str, state: dict[str, Any]) -> dict[str, Any]:
    # A finetuned checkpoint with a swapped head stores the backbone under
    # "backbone."; its head belongs to the old task, so it is left behind.
    from zoo.checkpoint import load_config

    config = load_config(path)
    adapters = [a.get("type") for a in config.get("adapters", [])]
    if "head" in adapters:
        return {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    return state
