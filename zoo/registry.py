"""ModelSpec and the model registry. Torch-free: listing never builds a model.

Specs arrive through the ``register_models`` hook (see :mod:`zoo.hookspecs`);
the public functions here load the plugins on first use.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

from zoo.errors import DuplicateNameError, InvalidSpecError, UnknownModelError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# timm's convention, plus an optional namespace ("timm/", "torchvision/", "myplugin/").
_NAME_RE = re.compile(r"^([a-z0-9][a-z0-9_.-]*/)?[a-z0-9][a-z0-9_.]*$")


@dataclass(frozen=True)
class PretrainedWeights:
    """Where one set of pretrained weights for an architecture may be found.

    Nothing here is fetched at listing time; weight sources (see
    ``register_weight_sources``) look these up on disk first.
    """

    tag: str  # short name: "tv_in1k", "a1_in1k", "cifar8"
    url: str | None = None  # download address, used only when the network is allowed
    filename: str | None = None  # file name in $TORCH_HOME/hub/checkpoints
    hf_hub_id: str | None = None  # "timm/resnet34.a1_in1k"
    package_file: str | None = None  # "package:relative/path" shipped inside a distribution
    distribution: str | None = None  # the pip name of the distribution that ships package_file
    layout: str = "native"  # key layout of the file: "native", "torchvision", "timm", "efficientnet_pytorch", ...
    num_classes: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    input_size: tuple[int, int, int] | None = None  # (C, H, W) the weights were trained at
    class_names: tuple[str, ...] | None = None
    license: str = ""  # SPDX id where known: "Apache-2.0"
    sha256: str | None = None  # hex digest of the file; a file that differs is refused
    description: str = ""
    source: str = ""  # the plugin that registered or attached these weights


@dataclass(frozen=True)
class ModelSpec:
    """Everything the zoo knows about an architecture without importing torch."""

    name: str
    builder: str  # "package.module:function"; called as builder(num_classes=, in_chans=, **kwargs)
    family: str = ""
    aliases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    input_size: tuple[int, int, int] = (3, 224, 224)
    num_classes: int = 1000
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    first_conv: str | None = None
    classifier: str | None = None
    paper: str = ""
    year: int | None = None
    params: int | None = None  # parameter count at the default num_classes and in_chans
    kwargs: Mapping[str, Any] = field(default_factory=dict)  # fixed builder arguments
    weights: tuple[PretrainedWeights, ...] = ()
    description: str = ""
    source: str = "builtin"  # "builtin" or the registering plugin's name

    @property
    def in_chans(self) -> int:
        return self.input_size[0]

    def validate(self) -> None:
        """Raise :class:`InvalidSpecError` when the spec cannot describe a model."""
        problems = []
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            problems.append(
                f"name {self.name!r} must be lowercase letters, digits and underscores"
                " (optionally 'namespace/name')"
            )
        if not isinstance(self.builder, str) or self.builder.count(":") != 1:
            problems.append(f"builder {self.builder!r} must be a 'module:function' string")
        if len(self.input_size) != 3 or not all(isinstance(v, int) and v > 0 for v in self.input_size):
            problems.append(f"input_size {self.input_size!r} must be three positive ints (C, H, W)")
        if not isinstance(self.num_classes, int) or self.num_classes < 0:
            problems.append(f"num_classes {self.num_classes!r} must be a non-negative int")
        if len(self.mean) != len(self.std):
            problems.append("mean and std must have the same length")
        for alias in self.aliases:
            if not _NAME_RE.match(alias):
                problems.append(f"alias {alias!r} is not a valid model name")
        if problems:
            raise InvalidSpecError(f"invalid model spec {self.name!r}: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view, for ``zoo list --json`` and ``zoo info --json``."""
        return {
            "name": self.name,
            "family": self.family,
            "aliases": list(self.aliases),
            "tags": list(self.tags),
            "input_size": list(self.input_size),
            "num_classes": self.num_classes,
            "mean": list(self.mean),
            "std": list(self.std),
            "first_conv": self.first_conv,
            "classifier": self.classifier,
            "paper": self.paper,
            "year": self.year,
            "params": self.params,
            "builder": self.builder,
            "kwargs": dict(self.kwargs),
            "weights": [w.tag for w in self.weights],
            "description": self.description,
            "source": self.source,
        }


@dataclass
class ModelInfo:
    """What zoo knows about one built model, kept on it as ``model.zoo_info`` (see :func:`model_info`).

    ``name``/``kwargs``/``num_classes``/``in_chans`` rebuild the architecture;
    ``adapters`` are the config entries that rebuild what ``create_model``
    alone cannot (a swapped head); ``pretrained`` says which weights were
    loaded (path, source, tag, missing and dropped keys); ``config`` is the
    checkpoint config the model was loaded from, if any. A head swap keeps the
    record and adds its adapter.
    """

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    num_classes: int = 0
    in_chans: int = 3
    adapters: list[dict[str, Any]] = field(default_factory=list)
    pretrained: dict[str, Any] | None = None
    config: dict[str, Any] | None = None


INFO_ATTRIBUTE = "zoo_info"


def model_info(model: Any) -> ModelInfo | None:
    """The :class:`ModelInfo` of a model built by ``zoo.create_model`` (or loaded by ``zoo.load``); else None."""
    info = getattr(model, INFO_ATTRIBUTE, None)
    return info if isinstance(info, ModelInfo) else None


class ModelRegistry:
    """Name → spec, with aliases. Duplicates are refused unless overriding is asked for."""

    def __init__(self) -> None:
        self._specs: dict[str, ModelSpec] = {}
        self._aliases: dict[str, str] = {}
        self.overrides: list[tuple[str, str, str]] = []  # (name, old source, new source)

    def register(self, spec: ModelSpec, *, override: bool = False, validate: bool = True) -> ModelSpec:
        if not isinstance(spec, ModelSpec):
            raise InvalidSpecError(f"register() takes a zoo.ModelSpec, got {type(spec).__name__}")
        if validate:
            spec.validate()
        self.check(spec, override=override)
        old = self._specs.get(spec.name)
        if old is not None:
            for alias in old.aliases:
                self._aliases.pop(alias, None)
            self.overrides.append((spec.name, old.source, spec.source))
        self._specs[spec.name] = spec
        for alias in spec.aliases:
            self._aliases[alias] = spec.name
        return spec

    def check(self, spec: ModelSpec, *, override: bool = False) -> None:
        """Raise the DuplicateNameError that registering ``spec`` would raise; change nothing."""
        for key in (spec.name, *spec.aliases):
            owner = self._specs.get(key) or self._specs.get(self._aliases.get(key, ""))
            if owner is None:
                continue
            if override and owner.name == spec.name:
                continue
            raise DuplicateNameError(
                f"model name {key!r} from {spec.source!r} is already registered by"
                f" {owner.source!r}; rename it, or pass override=True to replace it on purpose"
            )

    def state(self) -> tuple[Any, ...]:
        """A copy of the contents, for :meth:`restore` (a plugin's hook call is all-or-nothing)."""
        return dict(self._specs), dict(self._aliases), list(self.overrides)

    def restore(self, state: tuple[Any, ...]) -> None:
        self._specs, self._aliases, self.overrides = dict(state[0]), dict(state[1]), list(state[2])

    def attach_weights(self, name: str, weights: PretrainedWeights) -> ModelSpec:
        """Add ``weights`` to the spec registered as ``name`` (or an alias); a tag it has is refused."""
        spec = self.get(name)
        check_new_tag(spec, weights)
        updated = replace(spec, weights=(*spec.weights, weights))
        self._specs[spec.name] = updated
        return updated

    def __contains__(self, name: str) -> bool:
        return name in self._specs or name in self._aliases

    def __len__(self) -> int:
        return len(self._specs)

    def specs(self) -> list[ModelSpec]:
        return list(self._specs.values())

    def get(self, name: str) -> ModelSpec:
        key = name.strip()
        if key in self._specs:
            return self._specs[key]
        if key in self._aliases:
            return self._specs[self._aliases[key]]
        lowered = key.lower()
        if lowered != key and lowered in self:
            return self.get(lowered)
        raise UnknownModelError(self._unknown_message(key))

    def suggestions(self, name: str, n: int = 3) -> list[str]:
        """The registered names closest to ``name`` (plain names first, then namespaced)."""
        plain = [k for k in (*self._specs, *self._aliases) if "/" not in k]
        close = difflib.get_close_matches(name.lower(), plain, n=n, cutoff=0.6)
        if len(close) < n:
            spaced = [k for k in self._specs if "/" in k]
            bare = name.lower().rsplit("/", 1)[-1]
            by_tail = {k.rsplit("/", 1)[-1]: k for k in spaced}
            for hit in difflib.get_close_matches(bare, list(by_tail), n=n, cutoff=0.75):
                if by_tail[hit] not in close:
                    close.append(by_tail[hit])
        return close[:n]

    def _unknown_message(self, name: str) -> str:
        close = self.suggestions(name)
        hint = f"; did you mean {', '.join(close)}?" if close else "; run 'zoo list' to see the models"
        return f"unknown model {name!r}{hint}"

    def list(
        self,
        pattern: str | Iterable[str] | None = None,
        family: str | None = None,
        tag: str | None = None,
        source: str | None = None,
    ) -> list[ModelSpec]:
        patterns = [pattern] if isinstance(pattern, str) else list(pattern or [])
        out = []
        for spec in self._specs.values():
            if patterns and not any(
                fnmatch.fnmatchcase(spec.name, p) or any(fnmatch.fnmatchcase(a, p) for a in spec.aliases)
                for p in patterns
            ):
                continue
            if family is not None and spec.family != family:
                continue
            if tag is not None and tag not in spec.tags:
                continue
            if source is not None and spec.source != source:
                continue
            out.append(spec)
        return sorted(out, key=lambda s: natural_key(s.name))

    def families(self) -> list[str]:
        return sorted({s.family for s in self._specs.values() if s.family})

    def tags(self) -> list[str]:
        return sorted({t for s in self._specs.values() for t in s.tags})


def natural_key(text: str) -> list[Any]:
    """Sort 'resnet18' before 'resnet101', as timm's list_models does."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def check_new_tag(spec: ModelSpec, weights: PretrainedWeights, staged: Iterable[str] = ()) -> None:
    """Raise :class:`DuplicateNameError` when ``spec`` (or a staged attachment) already has ``weights.tag``."""
    if not isinstance(weights, PretrainedWeights):
        raise InvalidSpecError(f"weights for {spec.name} must be zoo.PretrainedWeights, got {type(weights).__name__}")
    if not weights.tag or not isinstance(weights.tag, str):
        raise InvalidSpecError(f"weights for {spec.name} need a tag such as 'in1k'")
    owner = next((w.source or spec.source for w in spec.weights if w.tag == weights.tag), None)
    if owner is None and weights.tag in staged:
        owner = weights.source
    if owner is not None:
        raise DuplicateNameError(
            f"weights {spec.name}.{weights.tag} from {weights.source or '?'!r} are already registered by"
            f" {owner!r}; pick another tag"
        )
