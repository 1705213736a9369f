"""Freezing parts of a model, keeping frozen BatchNorm frozen, and per-stage learning rates.

A model's *stages* are its top-level parameter-holding blocks in forward
order, the classifier excluded: ``stem, layer1 .. layer4`` for a ResNet
(leading single layers such as ``conv1, bn1`` merge into ``stem``), each
block of a ViT's ``blocks``, each layer of a plain ``nn.Sequential`` encoder.

Freezing sets ``requires_grad=False``; with the ``frozen`` BatchNorm policy
(the default) every BatchNorm layer inside a frozen part is also locked in
eval mode by swapping its class for a subclass whose ``train()`` keeps it in
eval, so the ``model.train()`` every epoch calls cannot make its running
statistics move. The ``train`` policy leaves them to the usual mode switch.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from torch import nn

from zoo.errors import ZooError

BN_POLICIES = ("frozen", "train")
# A Sequential/ModuleList holding more than this share of the body's
# parameters is split into its items (the blocks of a ViT).
_EXPAND_SHARE = 0.8


@dataclass
class Stage:
    """One freezable block: a name and the parameters (by qualified name) inside it."""

    name: str
    modules: list[str]  # qualified module names (from the model's root)
    params: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)


def head_module(model: nn.Module) -> nn.Module | None:
    """The classifier to train (the MLP of a :class:`HeadedModel`, else get_classifier())."""
    get = getattr(model, "get_classifier", None)
    return get() if callable(get) else None


def head_param_names(model: nn.Module) -> list[str]:
    """Qualified names of the classifier's parameters."""
    head = head_module(model)
    if head is None:
        return []
    ids = {id(p) for p in head.parameters()}
    return [n for n, p in model.named_parameters() if id(p) in ids]


def _has_params(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def model_stages(model: nn.Module) -> list[Stage]:
    """The model's stages in forward order (see the module docstring)."""
    head = head_module(model)
    head_ids = {id(p) for p in head.parameters()} if head is not None else set()
    prefix, root = "", model
    # Descend through wrappers that hold a single parameter-holding child.
    while True:
        kids = [(n, m) for n, m in root.named_children() if _owns_body_params(m, head_ids)]
        if len(kids) == 1 and any(_has_params(c) for c in kids[0][1].children()):
            prefix, root = f"{prefix}{kids[0][0]}.", kids[0][1]
            continue
        break
    total = sum(p.numel() for p in root.parameters() if id(p) not in head_ids) or 1
    entries: list[tuple[str, nn.Module]] = []
    for name, child in kids:
        share = sum(p.numel() for p in child.parameters() if id(p) not in head_ids) / total
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and len(child) > 1 and share > _EXPAND_SHARE:
            entries.extend((f"{name}.{i}", c) for i, c in child.named_children() if _owns_body_params(c, head_ids))
        else:
            entries.append((name, child))
    stages: list[Stage] = []
    leading: list[str] = []
    is_leaf = [not any(True for _ in m.children()) for _, m in entries]
    has_block = not all(is_leaf)
    names = {n for n, _ in entries}
    for (name, _), leaf in zip(entries, is_leaf):
        if leaf and has_block and not stages:
            leading.append(name)  # conv1, bn1 ... before the first block: the stem
            continue
        if leading:
            stages.append(_stage("stem" if "stem" not in names else "stem_layers", leading, prefix))
            leading = []
        if leaf and has_block and stages:
            # A lone norm after a block (resnet-d's bn1, a ViT's final norm) belongs to it.
            stages[-1].modules.append(prefix + name)
            stages[-1].aliases.append(name)
            continue
        stages.append(_stage(_shown(prefix) + name, [name], prefix))
    if leading:
        stages.append(_stage("stem" if "stem" not in names else "stem_layers", leading, prefix))
    # Parameters that belong to no child (a ViT's cls_token, pos_embed) go with the first stage.
    owned = {m for s in stages for m in s.modules}
    for pname, p in model.named_parameters():
        if id(p) in head_ids:
            continue
        if not any(pname.startswith(m + ".") for m in owned) and stages:
            stages[0].params.append(pname)
    for stage in stages:
        stage.params.extend(
            n for n, p in model.named_parameters()
            if id(p) not in head_ids and any(n.startswith(m + ".") for m in stage.modules)
        )
    return [s for s in stages if s.params]


def _owns_body_params(module: nn.Module, head_ids: set[int]) -> bool:
    return any(id(p) not in head_ids for p in module.parameters())


def _stage(name: str, modules: list[str], prefix: str) -> Stage:
    # Short names stay usable ("conv1" for the stem), except bare indices, which would read as a depth.
    aliases = [m for m in modules if m != name and not m.isdigit()]
    return Stage(name=name, modules=[prefix + m for m in modules], aliases=aliases)


def _shown(prefix: str) -> str:
    # Stage names are relative to the model the user named: a new head's wrapper is not part of them.
    return prefix[len("backbone."):] if prefix.startswith("backbone.") else prefix


def stage_names(model: nn.Module) -> list[str]:
    return [s.name for s in model_stages(model)]


def find_stage(stages: Sequence[Stage], name: str) -> int:
    """Index of the stage called ``name`` (or containing the module ``name``); a clear error otherwise."""
    for i, stage in enumerate(stages):
        if name == stage.name or name in stage.aliases:
            return i
    valid = ", ".join(s.name for s in stages)
    raise ZooError(f"no stage {name!r} in this model; valid stages (input to output): {valid}")


@dataclass
class FreezeResult:
    """What :func:`freeze` froze."""

    stages: list[Stage]
    frozen_stages: list[str]
    frozen_params: list[str]
    frozen_bn: list[str]
    bn_policy: str


def freeze(
    model: nn.Module,
    what: str | int | None = "backbone",
    *,
    patterns: Iterable[str] = (),
    bn_policy: str = "frozen",
) -> FreezeResult:
    """Freeze part of ``model`` (the head always stays trainable).

    ``what``: ``"backbone"`` (all but the head, the default), ``"none"``, a
    stage name (that stage and all before it), an int N or ``"N"`` (the first
    N stages). ``patterns`` adds fnmatch patterns over parameter names
    (``"layer1.*"``, ``"*.bn*"``).
    """
    if bn_policy not in BN_POLICIES:
        raise ZooError(f"unknown BatchNorm policy {bn_policy!r}; choose from: {', '.join(BN_POLICIES)}")
    stages = model_stages(model)
    head = set(head_param_names(model))
    count = _stage_count(stages, what)
    frozen_stages = [s.name for s in stages[:count]]
    to_freeze = {p for s in stages[:count] for p in s.params}
    patterns = list(patterns)
    if patterns:
        names = [n for n, _ in model.named_parameters()]
        for pattern in patterns:
            hits = [n for n in names if fnmatch.fnmatchcase(n, pattern) and n not in head]
            if not hits:
                raise ZooError(
                    f"freeze pattern {pattern!r} matches no parameter; names look like: {', '.join(names[:4])}, ..."
                )
            to_freeze.update(hits)
    for name, p in model.named_parameters():
        if name in to_freeze:
            p.requires_grad_(False)
    frozen_bn = lock_frozen_batchnorm(model, frozen_stage_modules(stages, frozen_stages)) if bn_policy == "frozen" else []
    return FreezeResult(stages, frozen_stages, sorted(to_freeze), frozen_bn, bn_policy)


def _stage_count(stages: Sequence[Stage], what: str | int | None) -> int:
    if what is None or what == "none" or what == 0:
        return 0
    if what in ("backbone", "all"):
        return len(stages)
    if isinstance(what, int) or (isinstance(what, str) and what.strip().isdigit()):
        n = int(what)
        if n < 0 or n > len(stages):
            raise ZooError(f"freeze depth must be between 0 and {len(stages)} (the number of stages), got {n}")
        return n
    return find_stage(stages, str(what)) + 1


def frozen_stage_modules(stages: Sequence[Stage], names: Iterable[str]) -> list[str]:
    chosen = set(names)
    return [m for s in stages if s.name in chosen for m in s.modules]


def unfreeze(model: nn.Module, stage_names_: Iterable[str]) -> list[str]:
    """Make the named stages trainable again (BatchNorm back to the usual train/eval switch)."""
    stages = model_stages(model)
    chosen = [stages[find_stage(stages, n)] for n in stage_names_]
    params = {p for s in chosen for p in s.params}
    for name, p in model.named_parameters():
        if name in params:
            p.requires_grad_(True)
    roots = [m for s in chosen for m in s.modules]
    for name, module in model.named_modules():
        if name and any(name == r or name.startswith(r + ".") for r in roots):
            original = getattr(type(module), "zoo_unfrozen_class", None)
            if original is not None:
                module.__class__ = original
    return [s.name for s in chosen]


# -- BatchNorm locking ---------------------------------------------------------

_LOCKED: dict[type, type] = {}


def _eval_only_train(self: nn.Module, mode: bool = True) -> nn.Module:
    # A frozen BatchNorm ignores train(): its running statistics must not move.
    nn.Module.train(self, False)
    return self


def _locked_class(cls: type) -> type:
    if getattr(cls, "zoo_unfrozen_class", None) is not None:
        return cls
    if cls not in _LOCKED:
        _LOCKED[cls] = type(f"Frozen{cls.__name__}", (cls,), {"train": _eval_only_train, "zoo_unfrozen_class": cls})
    return _LOCKED[cls]


def is_batchnorm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._NormBase)


def lock_frozen_batchnorm(model: nn.Module, frozen_modules: Sequence[str] = ()) -> list[str]:
    """Lock in eval mode every BatchNorm whose parameters are all frozen (or that sits in a frozen stage)."""
    locked = []
    for name, module in model.named_modules():
        if not is_batchnorm(module):
            continue
        params = list(module.parameters(recurse=False))
        frozen = all(not p.requires_grad for p in params) if params else False
        in_frozen_stage = any(name == m or name.startswith(m + ".") for m in frozen_modules)
        if frozen or in_frozen_stage:
            module.__class__ = _locked_class(type(module))
            module.eval()
            locked.append(name)
    return locked


def unlock_batchnorm(model: nn.Module) -> None:
    """Undo :func:`lock_frozen_batchnorm` everywhere (before export or pickling)."""
    for module in model.modules():
        original = getattr(type(module), "zoo_unfrozen_class", None)
        if original is not None:
            module.__class__ = original


# -- parameter groups ----------------------------------------------------------


@dataclass
class ParamGroup:
    """A named optimizer group with its learning rate and counts."""

    name: str
    params: list[Any]
    lr: float
    trainable: int = 0
    frozen: int = 0

    def as_optimizer_group(self) -> dict[str, Any]:
        return {"params": self.params, "lr": self.lr, "name": self.name}


def param_groups(model: nn.Module, lr: float, layer_decay: float = 1.0) -> list[ParamGroup]:
    """One group per stage plus the head; stage k from the top gets ``lr * layer_decay**k``.

    Frozen parameters are included (with their LR), so stages unfrozen later
    train without rebuilding the optimizer; optimizers skip parameters whose
    gradient is None.
    """
    stages = model_stages(model)
    by_name = dict(model.named_parameters())
    groups = []
    placed: set[str] = set()
    for k, stage in enumerate(stages):
        depth = len(stages) - k  # 1 for the stage right below the head
        groups.append(_group(stage.name, [by_name[n] for n in stage.params], lr * layer_decay**depth))
        placed.update(stage.params)
    rest = [p for n, p in by_name.items() if n not in placed]
    groups.append(_group("head", rest, lr))
    return [g for g in groups if g.params]


def _group(name: str, params: list[Any], lr: float) -> ParamGroup:
    trainable = sum(p.numel() for p in params if p.requires_grad)
    frozen = sum(p.numel() for p in params if not p.requires_grad)
    return ParamGroup(name, params, lr, trainable, frozen)


def refresh_counts(groups: Sequence[ParamGroup]) -> None:
    for g in groups:
        g.trainable = sum(p.numel() for p in g.params if p.requires_grad)
        g.frozen = sum(p.numel() for p in g.params if not p.requires_grad)
