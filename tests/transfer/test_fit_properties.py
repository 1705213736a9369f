"""Fitting foreign state dicts: every load is exact or refused, never a silent permutation (issue 18, 9)."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load, save

from zoo.errors import CheckpointError
from zoo.pretrained.fit import fit_state_dict, looks_sorted

LAYER = st.sampled_from(["conv", "bn", "linear"])
CHANNELS = st.sampled_from([2, 2, 3])  # mostly equal widths: same-shaped tensors to mix up
FOREIGN_LAST = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_var"}


def build(kinds, sizes):
    modules = []
    for kind, (a, b) in zip(kinds, sizes):
        if kind == "conv":
            modules.append(torch.nn.Conv2d(a, b, 1, bias=a == 2))
        elif kind == "bn":
            modules.append(torch.nn.BatchNorm2d(a))
        else:
            modules.append(torch.nn.Linear(a, b))
    return torch.nn.Sequential(*modules)


def rename(state, kinds, style, rng):
    """Another library's names for the same tensors; the meaning of each name is kept."""
    counts: dict[str, int] = {}
    index_name = {}
    for i, kind in enumerate(kinds):
        counts[kind] = counts.get(kind, 0) + 1
        index_name[str(i)] = {"prefix": f"layer.{i}", "typed": f"{kind}{counts[kind]}",
                              "opaque": f"t{i}", "foreign": f"blocks.{i}"}[style]
    out = {}
    for key, value in state.items():
        module, last = key.split(".", 1)
        if style == "opaque":  # the last name part is lost too
            out[f"{index_name[module]}_{rng.randrange(10**6)}"] = value
        elif style == "foreign":  # a library that calls a BatchNorm's weight gamma
            out[f"{index_name[module]}.{FOREIGN_LAST.get(last, last)}"] = value
        else:
            out[f"{index_name[module]}.{last}"] = value
    return out


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(LAYER, min_size=2, max_size=7),
    sizes=st.lists(st.tuples(CHANNELS, CHANNELS), min_size=7, max_size=7),
    style=st.sampled_from(["prefix", "typed", "opaque", "foreign"]),
    order=st.sampled_from(["module", "safetensors", "shuffled"]),
    fresh_stats=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_every_load_is_exact_or_refused(kinds, sizes, style, order, fresh_stats, seed):
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = build(kinds, sizes)
    original = {}
    for key, value in model.state_dict().items():
        if value.is_floating_point() and not (fresh_stats and "running" in key):
            value = torch.randn(value.shape)
        original[key] = value.clone()
    state = rename(original, kinds, style, rng)
    if order == "safetensors":  # what a safetensors file gives back: its own key order
        state = load(save({k: v.contiguous() for k, v in state.items()}))
    elif order == "shuffled":
        items = list(state.items())
        rng.shuffle(items)
        state = dict(items)
    target = build(kinds, sizes)
    try:
        fit_state_dict(target, state, ordered=order == "module")
    except CheckpointError:
        return  # refused: fine
    loaded = target.state_dict()
    for key, value in original.items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(loaded[key], value), f"{key} got another tensor ({style}, {order})"


def test_the_case_the_old_rule_loaded_wrongly_is_refused():
    # BatchNorms of the same width under names that sort "norm10" before "norm2".
    model = torch.nn.Sequential(*[torch.nn.BatchNorm2d(2) for _ in range(11)])
    original = {k: torch.randn(v.shape) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    renamed = {f"norm{int(k.split('.')[0]) + 1}.{k.split('.', 1)[1]}": v for k, v in original.items()}
    state = dict(sorted(renamed.items()))
    assert looks_sorted(state)  # so even without ordered=False the sorted names are not trusted
    with pytest.raises(CheckpointError, match="nothing says which is which"):
        fit_state_dict(torch.nn.Sequential(*[torch.nn.BatchNorm2d(2) for _ in range(11)]), state)


def test_module_order_is_not_mistaken_for_sorted():
    assert not looks_sorted(torch.nn.Conv2d(2, 2, 1).state_dict())  # weight before bias
