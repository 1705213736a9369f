"""Property-based: param_groups partitions every parameter; the unfreeze schedule only ever adds stages."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from zoo.train.optim import build_optimizer
from zoo.transfer.finetune import unfreeze_schedule
from zoo.transfer.freeze import param_groups

LEAF = st.sampled_from(["linear", "conv", "bn", "bias_free"])
BLOCK = st.one_of(LEAF, st.lists(LEAF, min_size=1, max_size=3))


def _leaf(kind):
    return {"linear": lambda: nn.Linear(2, 2), "conv": lambda: nn.Conv2d(2, 2, 1), "bn": lambda: nn.BatchNorm2d(2),
            "bias_free": lambda: nn.Linear(2, 2, bias=False)}[kind]()


class Random(nn.Module):
    def __init__(self, blocks, head, token, tie):
        super().__init__()
        made = []
        for i, block in enumerate(blocks):
            module = _leaf(block) if isinstance(block, str) else nn.Sequential(*[_leaf(k) for k in block])
            self.add_module(f"layer{i}", module)
            made.append(module)
        if tie and len(made) > 1:
            self.tied = made[0]  # the same module under a second name: its parameters once
        if token:
            self.cls_token = nn.Parameter(torch.zeros(1, 2))  # a parameter of no child
        self.fc = nn.Linear(2, 3) if head else None

    def get_classifier(self):
        return self.fc


@settings(max_examples=25, deadline=None, derandomize=True)
@given(blocks=st.lists(BLOCK, min_size=1, max_size=5), head=st.booleans(), token=st.booleans(), tie=st.booleans(),
       frozen=st.lists(st.booleans(), max_size=30), lr=st.floats(1e-5, 1.0), decay=st.floats(0.05, 1.0))
def test_param_groups_are_a_partition_of_all_parameters(blocks, head, token, tie, frozen, lr, decay):
    model = Random(blocks, head, token, tie)
    for p, off in zip(model.parameters(), frozen):
        p.requires_grad_(not off)
    groups = param_groups(model, lr, decay)
    placed = [id(p) for g in groups for p in g.params]
    assert len(placed) == len(set(placed))  # no parameter twice
    assert set(placed) == {id(p) for p in model.parameters()}  # none left out
    assert sum(g.trainable + g.frozen for g in groups) == sum(p.numel() for p in model.parameters())
    body = [g for g in groups if g.name != "head"]
    # the stage right below the head trains at lr * decay, each one further down at decay times that
    for k, g in enumerate(reversed(body), start=1):
        assert abs(g.lr - lr * decay**k) <= 1e-12 * max(1.0, lr)
    assert all(g.lr == lr for g in groups if g.name == "head")
    build_optimizer([g.as_optimizer_group() for g in groups], "adamw", lr=lr)  # torch refuses duplicates too


@settings(max_examples=50, deadline=None, derandomize=True)
@given(count=st.integers(0, 6), after=st.integers(0, 5), every=st.integers(1, 4))
def test_the_unfreeze_schedule_only_adds_stages_from_the_top(count, after, every):
    stages = [f"s{i}" for i in range(count)]
    at = unfreeze_schedule(stages, after, every)
    top_down = stages[::-1]
    previous: list[str] = []
    for epoch in range(1, after + every * count + 3):
        now = at(epoch)
        assert now == top_down[: len(now)]  # always the top stages
        assert previous == now[: len(previous)] and len(now) - len(previous) <= 1  # one more at most, none lost
        if epoch <= after:
            assert now == []
        elif count:
            assert len(now) == min(count, 1 + (epoch - after - 1) // every)
        previous = now
    assert previous == top_down  # in the end everything trains
