"""Resolve ``"package.module:attribute"`` references on first use."""

from __future__ import annotations

import importlib
from typing import Any


def resolve(ref: str | Any) -> Any:
    """Return the object a ``"module:attr"`` string names; pass callables through."""
    if not isinstance(ref, str):
        return ref
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'module:attribute', got {ref!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
