"""Fitting a state dict to a model: key layouts, prefixes, order, classifier and first conv.

Another library's file rarely uses the model's key names. The steps, in
order: a named layout converter, then the best prefix alignment, then the
same tensors in the same order under other names, where the file keeps the
module order (torch.save does; safetensors sorts its keys, so there a tensor
is paired only when its last name part and shape single it out); the old classifier is
dropped when the class count differs (the spec names it, as timm's
``load_pretrained`` does), and a shape mismatch names the first key that does
not fit.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Callable, Iterable, Mapping

from zoo.errors import CheckpointError
from zoo.registry import model_info

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


def remap_state_dict(state: dict[str, Any], model_keys: Mapping[str, Any], layout: str = "native",
                     classifier: Iterable[str] = (), ordered: bool | None = None) -> dict[str, Any]:
    """Rename ``state``'s keys to the model's: layout converter, then prefix alignment, then order.

    ``model_keys`` maps the model's keys to tensors (its state dict);
    ``classifier`` names the model's classifier keys, whose shapes may differ
    when tensors are matched by order (another class count). ``ordered``
    says whether the file keeps the module order (torch.save does,
    safetensors sorts its keys); None infers it from the keys. Returns the
    renamed dict; keys it cannot place are left as they were, so the fitting
    step reports them.
    """
    renamed, _ = remap_with_origin(state, model_keys, layout, classifier, ordered)
    return renamed


def remap_with_origin(state: dict[str, Any], model_keys: Mapping[str, Any], layout: str = "native",
                      classifier: Iterable[str] = (), ordered: bool | None = None
                      ) -> tuple[dict[str, Any], dict[str, str]]:
    """Like :func:`remap_state_dict`, plus ``{new key: the file's key}`` so errors name the file's own keys."""
    renamed, origin, _ = _remap(state, model_keys, layout, classifier, ordered)
    return renamed, origin


def _remap(state: dict[str, Any], model_keys: Mapping[str, Any], layout: str, classifier: Iterable[str],
           ordered: bool | None) -> tuple[dict[str, Any], dict[str, str], str | None]:
    # The third item says why tensors were not paired by order, when that is why keys are left over.
    converter = LAYOUT_CONVERTERS.get(layout)
    if converter is not None:
        state = converter(state)
    identity = {k: k for k in state}
    if all(k in model_keys for k in state):  # the model's own names: shapes are checked when fitting
        return state, identity, None
    if any(_DENSENET_OLD.match(k) for k in state):
        state = _densenet_legacy(state)
        identity = {k: k for k in state}
    best, best_overlap = identity, _overlap(state, model_keys)
    for names in _prefix_variants(state, model_keys):
        overlap = _overlap({new: state[old] for new, old in names.items()}, model_keys)
        # A wrapper's prefix renames most keys into place; one key landing by chance is no alignment.
        if overlap > best_overlap and 2 * overlap >= len(state):
            best, best_overlap = names, overlap
    refused = None
    if best_overlap < len(best):
        if ordered is None:
            ordered = not looks_sorted(state)
        if ordered:
            by_order, refused = _match_by_order(state, model_keys, set(classifier)), None
        else:
            by_order, refused = _match_unordered(state, model_keys, set(classifier))
        if by_order is not None:
            return {new: state[old] for new, old in by_order.items()}, by_order, None
    return {new: state[old] for new, old in best.items()}, best, refused


def looks_sorted(state: Mapping[str, Any]) -> bool:
    """Whether the keys are in safetensors' order (sorted by name within each dtype), not a module's.

    A module lists a layer's ``weight`` before its ``bias``, so a real
    module order is practically never sorted; a file that is carries no
    order to match by.
    """
    by_dtype: dict[Any, list[str]] = {}
    for key, value in state.items():
        by_dtype.setdefault(getattr(value, "dtype", None), []).append(key)
    return len(state) > 1 and all(keys == sorted(keys) for keys in by_dtype.values())


def _overlap(state: Mapping[str, Any], model_keys: Mapping[str, Any]) -> int:
    # Keys present on both sides with the same shape: a rename that lands on
    # a tensor of another shape is no alignment.
    return sum(1 for k, v in state.items() if k in model_keys and _shape(v) == _shape(model_keys[k]))


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(getattr(value, "shape", ()))


def _prefix_variants(state: dict[str, Any], model_keys: Mapping[str, Any]):
    """``{new key: file key}`` with one leading component removed, or one of the model's added."""
    file_heads = {k.split(".", 1)[0] + "." for k in state if "." in k}
    model_heads = {k.split(".", 1)[0] + "." for k in model_keys if "." in k}
    for head in file_heads:  # a wrapper in the file: "model.layer1..." -> "layer1..."
        yield {(k[len(head):] if k.startswith(head) else k): k for k in state}
    for head in model_heads:  # a wrapper in the model: "layer1..." -> "backbone.layer1..."
        yield {head + k: k for k in state}
    for old in file_heads:
        for new in model_heads:
            if old != new:
                yield {(new + k[len(old):] if k.startswith(old) else k): k for k in state}


def _match_by_order(state: dict[str, Any], model_keys: Mapping[str, Any],
                    classifier: set[str] = frozenset()) -> dict[str, str] | None:
    # Same tensors in the same order under other names (another library's
    # module naming): accept only when every shape lines up, except the
    # classifier's, which fitting then drops (another class count).
    model_items = [(k, v) for k, v in model_keys.items() if not _counter(k, v)]
    file_items = [(k, v) for k, v in state.items() if not _counter(k, v)]
    if len(file_items) != len(model_items):
        return None
    for (fk, fv), (mk, mv) in zip(file_items, model_items):
        if _shape(fv) != _shape(mv) and not (mk in classifier and len(_shape(fv)) == len(_shape(mv))):
            return None
    return {mk: fk for (mk, _), (fk, _) in zip(model_items, file_items)}


def _last(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _match_unordered(state: dict[str, Any], model_keys: Mapping[str, Any],
                     classifier: set[str] = frozenset()) -> tuple[dict[str, str] | None, str | None]:
    # The file's order means nothing (safetensors sorts its keys), so a tensor
    # is paired only where its last name part (weight, bias, running_mean...)
    # and shape single out one tensor of the model; tensors that share both
    # are paired only when they are equal, so no pairing can be a silent swap.
    # Returns (pairing or None, why not).
    model_items = [(k, v) for k, v in model_keys.items() if not _counter(k, v)]
    file_items = [(k, v) for k, v in state.items() if not _counter(k, v)]
    if len(file_items) != len(model_items):
        return None, None
    groups: dict[tuple[str, tuple[int, ...]], tuple[list[str], list[str]]] = {}
    for k, v in model_items:
        groups.setdefault((_last(k), _shape(v)), ([], []))[0].append(k)
    for k, v in file_items:
        groups.setdefault((_last(k), _shape(v)), ([], []))[1].append(k)
    pairs: dict[str, str] = {}
    left_model: list[str] = []
    left_file: list[str] = []
    for (last, shape), (mks, fks) in groups.items():
        if len(mks) != len(fks):
            left_model.extend(mks)
            left_file.extend(fks)
        elif len(fks) > 1 and not all(_equal(state[fks[0]], state[f]) for f in fks[1:]):
            return None, (f"{len(fks)} of its tensors named *.{last} have the shape {shape}"
                          f" ({fks[0]!r}, {fks[1]!r}, ...), and nothing says which is which")
        else:
            pairs.update(zip(mks, fks))
    # What is left must be the classifier (another class count), paired by last name part.
    lasts = [_last(k) for k in left_file]
    if (any(k not in classifier for k in left_model) or len(set(lasts)) != len(lasts)
            or sorted(lasts) != sorted(_last(k) for k in left_model)):
        stray = next(k for k in left_file if k not in classifier) if left_file else left_model[0]
        return None, (f"{stray!r} has no counterpart with the same last name part (weight, bias,"
                      " running_mean, ...) and shape on the other side")
    pairs.update({m: next(f for f in left_file if _last(f) == _last(m)) for m in left_model})
    return pairs, None


def _counter(key: str, value: Any) -> bool:
    """BatchNorm's num_batches_tracked, under any name."""
    return key.endswith("num_batches_tracked") or (getattr(value, "ndim", 1) == 0 and not value.is_floating_point())


def _equal(a: Any, b: Any) -> bool:
    return a.dtype == b.dtype and bool((a == b).all())


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


def fit_state_dict(model: Any, state: dict[str, Any], spec: Any = None, *, source: str = "weights",
                   ordered: bool | None = None) -> dict[str, list[str]]:
    """Load ``state`` into ``model`` after checks; the classifier is kept fresh when it does not fit.

    Returns ``{"missing": [...], "dropped": [...]}`` (keys left at their
    initial values; file keys dropped). Raises :class:`CheckpointError` naming
    the first key whose shape does not match, or that one side lacks; a key
    of the file is named as the file spells it. ``ordered``: see
    :func:`remap_state_dict`.
    """
    own = model.state_dict()
    head = classifier_keys(model, spec)
    state, origin, refused = _remap(state, own, "native", head, ordered)
    if refused:
        raise CheckpointError(
            f"weights from {source} do not fit {_arch_name(model)} by name, and the file's key order is not the"
            f" module order (safetensors stores keys sorted), so tensors are not paired by order: {refused};"
            " rename the file's keys to the model's, or save it with torch.save in module order"
        )
    dropped: list[str] = []
    # A classifier for another class count is dropped, as timm does.
    for key in sorted(head):
        if key in state and tuple(state[key].shape) != tuple(own[key].shape):
            dropped.extend(origin.get(k, k) for k in sorted(head) if k in state)
            for k in head:
                state.pop(k, None)
            break
    state = _adapt_first_conv(state, own, spec)
    prefix = f"weights from {source} do not fit {_arch_name(model)}: first mismatching key"
    for key, value in state.items():
        if key in own and tuple(value.shape) != tuple(own[key].shape):
            raise CheckpointError(
                f"{prefix} {_file_key(key, origin)} has shape {tuple(value.shape)} in the file,"
                f" {tuple(own[key].shape)} in the model"
            )
    unexpected = [k for k in state if k not in own]
    # The file may carry a classifier the model does not have (num_classes=0).
    unexpected_body = [k for k in unexpected if not _looks_like_classifier(k, spec)]
    if unexpected_body:
        raise CheckpointError(
            f"{prefix} {_file_key(unexpected_body[0], origin)} is not in the model"
            f" ({len(unexpected_body)} such keys); is it another architecture?"
        )
    dropped.extend(origin.get(k, k) for k in unexpected)
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    missing_body = [k for k in missing if k not in head]
    if missing_body:
        present = next((origin.get(k, k) for k in state), None)
        have = f"; the file's first key is {present!r}" if present else "; the file holds no tensors for it"
        raise CheckpointError(
            f"weights from {source} do not fit {_arch_name(model)}: the model's {missing_body[0]!r} has no"
            f" tensor in the file ({len(missing_body)} missing){have}; is it another architecture?"
        )
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return {"missing": missing, "dropped": dropped}


def _file_key(key: str, origin: Mapping[str, str]) -> str:
    """The key as the file spells it, and the model's name for it when they differ."""
    original = origin.get(key, key)
    return repr(original) if original == key else f"{original!r} (the model's {key!r})"


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
    info = model_info(model)
    return info.name if info else type(model).__name__
