"""The plugin manager: the built-in plugins first, then the ``zoo`` entry points, each hook call all-or-nothing."""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Iterable

import pluggy

from zoo import hookspecs
from zoo.errors import DuplicateNameError, InvalidSpecError
from zoo.extensions import DatasetSource, ExportFormat, NamedTable, WeightSource
from zoo.registry import ModelRegistry, ModelSpec, PretrainedWeights, check_new_tag
from zoo.text import describe

ENTRY_POINT_GROUP = "zoo"
ENV_ALLOWLIST = "ZOO_PLUGINS"

# The tool's own features, registered through the same hooks as third parties.
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("zoo.models", "zoo.default_plugins.models"),
    ("zoo.timm", "zoo.default_plugins.timm_models"),
    ("zoo.torchvision", "zoo.default_plugins.torchvision_models"),
    ("zoo.exporters", "zoo.default_plugins.exporters"),
    ("zoo.datasets", "zoo.default_plugins.datasets"),
    ("zoo.weights", "zoo.default_plugins.weights"),
)

HOOK_NAMES = (
    "register_models",
    "register_weights",
    "register_weight_sources",
    "register_datasets",
    "register_exporters",
    "register_commands",
)

# The CLI's own command names (zoo.cli.COMMANDS; a test keeps the two equal), which plugins cannot take.
BUILTIN_COMMANDS = frozenset(
    {"list", "info", "plugins", "train", "evaluate", "mistakes", "predict", "serve", "finetune", "pretrain", "export",
     "bench", "lr-find", "compare"}
)


class PluginLoadWarning(UserWarning):
    """A plugin failed to load or one of its hooks raised."""


@dataclass
class PluginInfo:
    """What ``zoo plugins`` shows about one plugin."""

    name: str
    module: str
    builtin: bool
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    skipped: bool = False  # excluded by ZOO_PLUGINS / --no-plugins

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "builtin": self.builtin,
            "distribution": self.distribution,
            "version": self.version,
            "hooks": self.hooks,
            "registered": self.registered,
            "errors": self.errors,
            "skipped": self.skipped,
        }


class ZooPluginManager:
    """Holds the pluggy manager and the registries the hooks fill."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("zoo")
        self.pm.add_hookspecs(hookspecs)
        self.models = ModelRegistry()
        self.weight_sources: list[WeightSource] = []
        self.datasets: NamedTable[DatasetSource] = NamedTable("dataset scheme", "scheme")
        self.exporters: NamedTable[ExportFormat] = NamedTable("export format", "name")
        self.commands: dict[str, Any] = {}
        self.plugins: dict[str, PluginInfo] = {}
        self._warned = False
        self._probes: dict[int, ModelRegistry] = {}

    # -- loading ---------------------------------------------------------------

    def load(self, allow: Iterable[str] | None = None, defaults: Iterable[tuple[str, str]] = DEFAULT_PLUGINS) -> None:
        """Register the built-ins and the allowed entry points, then run every hook."""
        allowed = None if allow is None else set(allow)
        loaded: list[tuple[Any, PluginInfo]] = []
        for name, module in defaults:
            info = PluginInfo(name=name, module=module, builtin=True)
            self.plugins[name] = info
            try:
                loaded.append((importlib.import_module(module), info))
            except Exception as exc:  # a broken install must not take the CLI down
                info.errors.append(f"error importing plugin {name!r}: {describe(exc)}")
        for ep in _entry_points():
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                module=ep.value,
                builtin=False,
                distribution=getattr(dist, "name", None),
                version=getattr(dist, "version", None),
            )
            if ep.name in self.plugins:
                info.errors.append(f"plugin name {ep.name!r} is already taken by {self.plugins[ep.name].module!r}")
                self.plugins[f"{ep.name} ({ep.value})"] = info
                continue
            self.plugins[ep.name] = info
            if allowed is not None and ep.name not in allowed:
                info.skipped = True
                continue
            try:
                loaded.append((ep.load(), info))
            except Exception as exc:
                info.errors.append(f"error importing plugin {ep.name!r}: {describe(exc)}")
        # pluggy calls the last registered implementation first; registering in
        # reverse makes its order the built-ins first, then the entry points by name.
        for obj, info in reversed(loaded):
            try:
                self._register(obj, info)
            except Exception as exc:
                info.errors.append(f"error importing plugin {info.name!r}: {describe(exc)}")
        for hook in HOOK_NAMES:
            self._run_hook(hook)

    def register_plugin(self, obj: Any, name: str) -> PluginInfo:
        """Register an in-process plugin object (tests, notebooks) and run its hooks."""
        info = PluginInfo(name=name, module=getattr(obj, "__name__", repr(obj)), builtin=False)
        self.plugins[name] = info
        try:
            self._register(obj, info)
        except Exception as exc:
            info.errors.append(f"error registering plugin {name!r}: {describe(exc)}")
            return info
        for hook in HOOK_NAMES:
            self._run_hook(hook, only=name)
        return info

    def _register(self, obj: Any, info: PluginInfo) -> None:
        self.pm.register(obj, name=info.name)
        unknown = [
            attr
            for attr in dir(obj)
            if attr.startswith("register_")
            and attr not in HOOK_NAMES
            and self.pm.parse_hookimpl_opts(obj, attr) is not None
        ]
        if unknown:
            self.pm.unregister(name=info.name)
            raise InvalidSpecError(f"unknown hook(s) {', '.join(unknown)}; known hooks: {', '.join(HOOK_NAMES)}")
        info.hooks = [
            hook for hook in HOOK_NAMES if any(i.plugin_name == info.name for i in getattr(self.pm.hook, hook).get_hookimpls())
        ]

    def _run_hook(self, hook: str, only: str | None = None) -> None:
        # pluggy's order (tryfirst, the rest last-registered first, trylast),
        # with wrappers around the whole call; zoo calls each implementation
        # itself, so one plugin raising cannot stop the others from registering.
        impls = [i for i in reversed(getattr(self.pm.hook, hook).get_hookimpls())
                 if only is None or i.plugin_name == only]
        teardowns: list[tuple[Any, Any, PluginInfo, list[tuple[Any, bool]]]] = []
        for impl in impls:
            info = self.plugins[impl.plugin_name]
            staged: list[tuple[Any, bool]] = []
            kwargs = {arg: self._make_register(hook, info, staged) for arg in impl.argnames}
            if not (impl.wrapper or impl.hookwrapper):
                self._call_plain(hook, info, staged, lambda: impl.function(**kwargs))
                continue
            try:
                gen = impl.function(**kwargs)
                next(gen)  # the wrapper's code before its yield
            except Exception as exc:
                info.errors.append(f"hook wrapper {hook} raised {describe(exc)}")
                self._probes.pop(id(staged), None)
                continue
            teardowns.append((impl, gen, info, staged))
        for impl, gen, info, staged in reversed(teardowns):  # innermost wrapper finishes first
            self._call_plain(hook, info, staged, lambda: _finish_wrapper(impl, gen))

    def _call_plain(self, hook: str, info: PluginInfo, staged: list[tuple[Any, bool]], call: Callable[[], Any]) -> None:
        try:
            call()
            self._commit(hook, staged, info)
        except Exception as exc:
            info.errors.append(f"hook {hook} raised {describe(exc)}")
            return
        finally:
            self._probes.pop(id(staged), None)
        names = info.registered.setdefault(_KIND[hook], [])
        names.extend(_item_name(item) for item, _ in staged)

    def _make_register(self, hook: str, info: PluginInfo, staged: list[tuple[Any, bool]]) -> Callable[..., Any]:
        source = "builtin" if info.builtin else info.name
        expected = _ITEM_TYPE[hook]

        def register(item: Any, weights: Any = None, *, override: bool = False) -> Any:
            if hook == "register_weights":  # register(model_name, weights)
                staged.append((self._stage_weights(item, weights, source, staged), False))
                return weights
            if expected is not None and not isinstance(item, expected):
                raise InvalidSpecError(f"{hook} expects {expected.__name__} objects, got {type(item).__name__}")
            if hook == "register_commands":
                name = getattr(item, "name", None)
                if not name or not callable(getattr(item, "main", None)):
                    raise InvalidSpecError("register_commands expects click.Command objects")
                staged_names = {getattr(other, "name", None) for other, _ in staged}
                if name in BUILTIN_COMMANDS or name in self.commands or name in staged_names:
                    owner = ("zoo" if name in BUILTIN_COMMANDS
                             else self.commands[name][1] if name in self.commands else info.name)
                    raise DuplicateNameError(f"command {name!r} from {info.name!r} clashes with one from {owner!r}")
            else:
                item = _with_source(item, source)
                self._check_staged(hook, item, staged, override)
            staged.append((item, override))
            return item

        return register

    def _stage_weights(self, name: Any, weights: Any, source: str, staged: list[tuple[Any, bool]]) -> tuple[str, Any]:
        if not isinstance(name, str):
            raise InvalidSpecError(f"register_weights takes (model_name, PretrainedWeights), got {type(name).__name__}")
        spec = self.models.get(name)  # UnknownModelError, with suggestions, fails the call
        if isinstance(weights, PretrainedWeights):
            weights = _with_source(weights, source)
        check_new_tag(spec, weights, staged=[w.tag for (n, w), _ in staged if n == spec.name])
        return spec.name, weights

    def _check_staged(self, hook: str, item: Any, staged: list[tuple[Any, bool]], override: bool) -> None:
        # Validate now, so the plugin sees the error where it made the mistake.
        if hook == "register_models":
            item.validate()
            # One private registry per hook call, grown item by item: re-registering
            # every earlier item would make a plugin with a thousand specs quadratic.
            probe = self._probes.setdefault(id(staged), ModelRegistry())
            probe.register(item, validate=False)
            # The same check the commit makes, so an override whose alias clashes fails here.
            self.models.check(item, override=override)
        elif hook == "register_weight_sources":
            taken = {s.name: s for s in self.weight_sources} | {s.name: s for s, _ in staged}
            if item.name in taken and not override:
                raise DuplicateNameError(
                    f"weight source {item.name!r} from {item.source!r} is already registered by {taken[item.name].source!r}"
                )
        elif hook == "register_datasets":
            self.datasets.check(item, override=override)
            if any(other.scheme == item.scheme for other, _ in staged):
                raise DuplicateNameError(f"dataset scheme {item.scheme!r} is registered twice by {item.source!r}")
        elif hook == "register_exporters":
            self.exporters.check(item, override=override)
            if any(other.name == item.name for other, _ in staged):
                raise DuplicateNameError(f"export format {item.name!r} is registered twice by {item.source!r}")

    def _commit(self, hook: str, staged: list[tuple[Any, bool]], info: PluginInfo) -> None:
        # All or nothing: whatever the staging checks missed, a failure here
        # puts every table back as it was before this plugin's call.
        saved = (self.models.state(), list(self.weight_sources), self.datasets.state(), self.exporters.state(),
                 dict(self.commands))
        try:
            for item, override in staged:
                if hook == "register_models":
                    self.models.register(item, override=override, validate=False)  # validated when staged
                elif hook == "register_weights":
                    self.models.attach_weights(*item)
                elif hook == "register_weight_sources":
                    self.weight_sources = [s for s in self.weight_sources if s.name != item.name] + [item]
                elif hook == "register_datasets":
                    self.datasets.register(item, override=override)
                elif hook == "register_exporters":
                    self.exporters.register(item, override=override)
                else:
                    self.commands[item.name] = (item, info.name)
        except BaseException:
            self.models.restore(saved[0])
            self.weight_sources = saved[1]
            self.datasets.restore(saved[2])
            self.exporters.restore(saved[3])
            self.commands = saved[4]
            raise

    # -- reporting -------------------------------------------------------------

    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.errors]

    def warn_failures(self, echo: Callable[[str], None] | None = None) -> None:
        """Say once per process which plugins failed; ``zoo plugins`` has the details."""
        if self._warned:
            return
        self._warned = True
        for info in self.failures():
            line = f"plugin {info.name!r} failed: {info.errors[0]} (see 'zoo plugins')"
            if echo is not None:
                echo(f"zoo: warning: {line}")
            else:
                warnings.warn(line, PluginLoadWarning, stacklevel=3)


_KIND = {
    "register_models": "models",
    "register_weights": "weights",
    "register_weight_sources": "weight_sources",
    "register_datasets": "datasets",
    "register_exporters": "exporters",
    "register_commands": "commands",
}
_ITEM_TYPE: dict[str, type | None] = {
    "register_models": ModelSpec,
    "register_weights": None,
    "register_weight_sources": WeightSource,
    "register_datasets": DatasetSource,
    "register_exporters": ExportFormat,
    "register_commands": None,
}


def _finish_wrapper(impl: Any, gen: Any) -> None:
    # The hooks return nothing, so the call's result is an empty list; an
    # old-style hookwrapper receives it wrapped in a pluggy.Result.
    result: Any = pluggy.Result.from_call(list) if impl.hookwrapper else []
    try:
        gen.send(result)
    except StopIteration:
        return
    gen.close()
    raise RuntimeError("hook wrapper yielded twice")


def _with_source(item: Any, source: str) -> Any:
    from dataclasses import replace

    return replace(item, source=source)


def _item_name(item: Any) -> str:
    if isinstance(item, tuple):  # (model name, PretrainedWeights) from register_weights
        return f"{item[0]}.{item[1].tag}"
    for attr in ("name", "scheme"):
        value = getattr(item, attr, None)
        if isinstance(value, str):
            return value
    return repr(item)


def _entry_points() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
