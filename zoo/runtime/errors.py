"""The runtime's one error type.

Inside an installed zoo it is a :class:`zoo.errors.ZooError`, so the CLI shows
it as a one-line message; in a copy of this package deployed without the rest
of zoo (only onnxruntime, numpy and pillow) it is a plain ``ValueError``.
"""

from __future__ import annotations

try:
    from zoo.errors import ZooError

    _BASES: tuple[type, ...] = (ZooError, ValueError)
except ImportError:  # deployed on its own, without zoo
    _BASES = (ValueError,)


class RuntimeInputError(*_BASES):  # type: ignore[misc]
    """A model file, image or option the runtime cannot use; the message says how to fix it."""
