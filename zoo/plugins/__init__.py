"""The plugin manager: built-in plugins first, then the ``zoo`` entry points.

Loading runs once per process, on first use of the registry (or when the CLI
asks). A plugin that fails to import, or whose hook raises, is recorded with
its error and contributes nothing; the others load as usual.

``ZOO_PLUGINS`` limits which third-party plugins load: unset loads all,
an empty value loads none, ``a,b`` loads only the entry points named a and b.
The built-in plugins always load.
"""

from __future__ import annotations

import os
from typing import Iterable

from zoo.errors import UnknownModelError, ZooError
from zoo.extensions import DatasetSource, ExportFormat, NamedTable, WeightSource
from zoo.plugins.manager import (
    BUILTIN_COMMANDS,
    DEFAULT_PLUGINS,
    ENTRY_POINT_GROUP,
    ENV_ALLOWLIST,
    HOOK_NAMES,
    PluginInfo,
    PluginLoadWarning,
    ZooPluginManager,
)
from zoo.registry import ModelRegistry, ModelSpec

__all__ = [
    "BUILTIN_COMMANDS", "DEFAULT_PLUGINS", "ENTRY_POINT_GROUP", "ENV_ALLOWLIST", "HOOK_NAMES", "PluginInfo",
    "PluginLoadWarning", "ZooPluginManager", "allowed_from_env", "configure", "dataset_sources", "export_formats",
    "get_manager", "get_spec", "list_models", "list_specs", "load_plugins", "model_plugin_failures", "registry",
    "provider", "reset", "set_quiet", "weight_sources",
]


# -- the process-wide manager --------------------------------------------------

_manager: ZooPluginManager | None = None
_allow_override: list[str] | None = None
_configured = False


def configure(*, no_plugins: bool = False, allow: Iterable[str] | None = None) -> None:
    """Choose which third-party plugins load; must run before first use.

    ``no_plugins`` loads only the built-ins (the CLI's ``--no-plugins``).
    Otherwise ``allow`` (or ``ZOO_PLUGINS``) names the plugins to load.
    """
    global _allow_override, _configured
    if _manager is not None:
        raise ZooError("plugins are already loaded; call zoo.plugins.reset() first")
    _allow_override = [] if no_plugins else (list(allow) if allow is not None else None)
    _configured = True


def allowed_from_env() -> list[str] | None:
    value = os.environ.get(ENV_ALLOWLIST)
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def get_manager() -> ZooPluginManager:
    """The loaded plugin manager, loading plugins on first call."""
    global _manager
    if _manager is None:
        manager = ZooPluginManager()
        allow = _allow_override if _configured else allowed_from_env()
        if _configured and _allow_override is None:
            allow = allowed_from_env()
        manager.load(allow=allow)
        _manager = manager
        if not _quiet:
            manager.warn_failures()
    return _manager


_quiet = False


def set_quiet(quiet: bool) -> None:
    """The CLI reports failures itself, as one line per plugin on stderr."""
    global _quiet
    _quiet = quiet


def reset() -> None:
    """Forget loaded plugins (for tests): the next use loads them again."""
    global _manager, _allow_override, _configured
    _manager = None
    _allow_override = None
    _configured = False


def load_plugins() -> ZooPluginManager:
    """Load the plugins now (idempotent) and return the manager."""
    return get_manager()


def _is_loaded() -> bool:
    return _manager is not None


# -- accessors: the registries the plugins filled ------------------------------


def registry() -> ModelRegistry:
    """The process-wide registry, filled by the plugins on first use."""
    return get_manager().models


def list_models(
    pattern: str | Iterable[str] | None = None,
    family: str | None = None,
    tag: str | None = None,
    source: str | None = None,
) -> list[str]:
    """Names of registered models matching fnmatch ``pattern``(s), family, tag and source."""
    return [s.name for s in registry().list(pattern, family=family, tag=tag, source=source)]


def list_specs(
    pattern: str | Iterable[str] | None = None,
    family: str | None = None,
    tag: str | None = None,
    source: str | None = None,
) -> list[ModelSpec]:
    """Like :func:`list_models` but returns the specs."""
    return registry().list(pattern, family=family, tag=tag, source=source)


def get_spec(name: str) -> ModelSpec:
    """The spec registered under ``name`` or one of its aliases.

    An unknown name also names the plugins that failed to register their
    models: the model may be one of theirs.
    """
    try:
        return registry().get(name)
    except UnknownModelError as exc:
        broken = model_plugin_failures()
        if not broken:
            raise
        notes = "; ".join(f"plugin {info.name!r} failed to load ({info.errors[0]})" for info in broken)
        raise UnknownModelError(f"{exc}; {notes}; see 'zoo plugins'") from None


def provider(spec: ModelSpec) -> dict[str, str | None]:
    """Which plugin, and which installed distribution, registered ``spec`` (a checkpoint records it)."""
    source = spec.source or "builtin"
    info = get_manager().plugins.get(source)
    if source == "builtin" or info is None or info.builtin:
        from zoo import __version__

        return {"plugin": source, "distribution": "zoo", "version": __version__}
    return {"plugin": source, "distribution": info.distribution, "version": info.version}


def model_plugin_failures() -> list[PluginInfo]:
    """Plugins that failed before registering their models (import errors, or a raising register_models)."""
    return [
        info for info in get_manager().failures()
        if not info.hooks or any("register_models" in error for error in info.errors)
    ]


def weight_sources() -> list[WeightSource]:
    """Registered weight sources, in the order they are tried."""
    return sorted(get_manager().weight_sources, key=lambda s: (s.priority, s.name))


def dataset_sources() -> NamedTable[DatasetSource]:
    """Registered dataset schemes (``demo:``, ...)."""
    return get_manager().datasets


def export_formats() -> NamedTable[ExportFormat]:
    """Registered export formats."""
    return get_manager().exporters
