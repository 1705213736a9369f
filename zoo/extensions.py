"""Records for the other things plugins register: weight sources, dataset
sources and export formats. Torch-free, like the registry.

Each record names its implementation as a ``"module:function"`` string (or a
callable), so registering costs nothing until the thing is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from zoo.errors import DuplicateNameError, InvalidSpecError, ZooError

_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class WeightSource:
    """A place pretrained weights can come from.

    ``find`` is called as ``find(spec, weights, allow_download)`` with a
    :class:`zoo.registry.ModelSpec` and one of its
    :class:`zoo.registry.PretrainedWeights`; it returns a local file path,
    or ``None`` when this source does not have them. Sources are tried by
    ascending ``priority``; offline sources should use priorities below 100.
    """

    name: str
    find: str | Callable[..., Any]
    priority: int = 50
    description: str = ""
    source: str = "builtin"


@dataclass(frozen=True)
class DatasetSource:
    """A named dataset scheme: ``demo:cats`` is scheme ``demo``, name ``cats``.

    ``resolve`` is called as ``resolve(name)`` and returns the path of an
    image folder (class sub-folders, or ``train``/``val`` sub-folders).
    ``names`` lists the datasets the scheme knows, for help texts.
    """

    scheme: str
    resolve: str | Callable[[str], Any]
    names: tuple[str, ...] = ()
    description: str = ""
    source: str = "builtin"


@dataclass(frozen=True)
class ExportFormat:
    """An export format for ``zoo export --format NAME``.

    ``export`` is called as ``export(model, config, out_dir, **options)`` with
    the rebuilt ``torch.nn.Module`` and the checkpoint's config dict, and
    returns the path of the file it wrote.
    """

    name: str
    export: str | Callable[..., Any]
    suffix: str = ""
    description: str = ""
    source: str = "builtin"


T = TypeVar("T", WeightSource, DatasetSource, ExportFormat)


class NamedTable(Generic[T]):
    """A small name → record table that refuses silent duplicates."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        self._items: dict[str, T] = {}

    def register(self, item: T, *, override: bool = False) -> T:
        self.check(item, override=override)
        self._items[getattr(item, self.key)] = item
        return item

    def check(self, item: T, *, override: bool = False) -> None:
        """Raise the error that registering ``item`` would raise; change nothing."""
        name = getattr(item, self.key)
        if not isinstance(name, str) or not _KEY_RE.match(name):
            raise InvalidSpecError(f"invalid {self.kind} name {name!r}: use lowercase letters, digits, '-' and '_'")
        old = self._items.get(name)
        if old is not None and not override:
            raise DuplicateNameError(
                f"{self.kind} {name!r} from {item.source!r} is already registered by {old.source!r};"
                " rename it, or pass override=True to replace it on purpose"
            )

    def state(self) -> dict[str, T]:
        """A copy of the contents, for :meth:`restore`."""
        return dict(self._items)

    def restore(self, state: dict[str, T]) -> None:
        self._items = dict(state)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise ZooError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self):
        return iter(sorted(self._items.values(), key=lambda i: getattr(i, self.key)))

    def __len__(self) -> int:
        return len(self._items)
