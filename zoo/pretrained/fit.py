"""Fitting a state dict to a model: key layouts, prefixes, order, classifier and first conv.

Another library's file rarely uses the model's key names. The steps, in
order: a named layout converter, then the best prefix alignment, then the
same tensors in the same order under other names; the old classifier is
dropped when the class count differs (the spec names it, as timm's
``load_pretrained`` does), and a shape mismatch names the first key that does
not fit.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Callable, Mapping

from zoo.errors import CheckpointError


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
