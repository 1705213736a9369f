"""Every hook a zoo plugin can implement.

A plugin is a module (or object) with functions decorated by
``zoo.hookimpl`` and named after the specs below; a third-party distribution
exposes it through the ``zoo`` entry-point group::

    [project.entry-points.zoo]
    myplugin = "zoo_myplugin.plugin"

Every hook is called ``register_*`` and receives one argument, ``register``:
a callback that adds one item to the zoo. The plugin never touches the
registries directly, and the zoo stamps each item with the plugin's name.
Hooks are not ``firstresult``: every plugin's implementation is called, each
on its own, so one that raises is recorded against its plugin and the others
still register. A module that implements hooks must not import torch at its
top: listing models and ``zoo --help`` load every plugin.
"""

from __future__ import annotations

from typing import Callable

import pluggy

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")
"""Decorator for a plugin's hook implementations; ``zoo.hookimpl`` is the same object."""


# -- architectures -------------------------------------------------------------


@hookspec
def register_models(register: Callable[..., object]) -> None:
    """Register architectures.

    Call ``register(spec, override=False)`` once per :class:`zoo.ModelSpec`.
    A name (or alias) already taken raises ``DuplicateNameError`` naming
    both plugins, unless ``override=True`` is passed, which replaces the
    earlier spec and is reported by ``zoo plugins``.
    """


# -- pretrained weights --------------------------------------------------------


@hookspec
def register_weight_sources(register: Callable[..., object]) -> None:
    """Register places that pretrained weights can be found.

    Call ``register(source)`` with a :class:`zoo.extensions.WeightSource`.
    Sources are tried in ascending priority until one returns a file path;
    the built-ins look in a ``--weights`` file, the torch hub cache, the
    Hugging Face cache, then download when allowed.
    """


@hookspec
def register_weights(register: Callable[..., object]) -> None:
    """Attach pretrained weights to an architecture that is already registered.

    Call ``register(model_name, weights)`` with a registered name (or alias),
    for example ``"timm/tf_efficientnet_lite0"`` or a built-in, and a
    :class:`zoo.PretrainedWeights`. The weights are appended to that spec's
    ``weights``, so the model is not registered again. Runs after every
    plugin's ``register_models``, so a plugin can attach weights to another
    plugin's model. An unknown model name, or a tag the model already has,
    fails the plugin's whole call (shown by ``zoo plugins``).
    """


# -- datasets ------------------------------------------------------------------


@hookspec
def register_datasets(register: Callable[..., object]) -> None:
    """Register named dataset schemes such as ``demo`` in ``demo:cats``.

    Call ``register(source)`` with a :class:`zoo.extensions.DatasetSource`;
    ``--data SCHEME:NAME`` then resolves through it to an image folder.
    """


# -- export --------------------------------------------------------------------


@hookspec
def register_exporters(register: Callable[..., object]) -> None:
    """Register export formats for ``zoo export --format``.

    Call ``register(fmt)`` with a :class:`zoo.extensions.ExportFormat`.
    """


# -- command line --------------------------------------------------------------


@hookspec
def register_commands(register: Callable[..., object]) -> None:
    """Add commands to the ``zoo`` command line.

    Call ``register(command)`` with a ``click.Command`` (import click inside
    the hook, not torch). A name that clashes with a built-in command is
    refused and recorded as the plugin's failure.
    """
