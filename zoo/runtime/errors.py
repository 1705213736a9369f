"""The runtime's one error type.

Inside an installed zoo it is a :class:`zoo.errors.ZooError`, so the CLI shows
it as a one-line message; in a copy of this package deployed without the rest
of zoo (only onnxruntime, numpy and pillow) it is a plain ``Exception``.
"""

from __future__ import annotations

try:
    from zoo.errors import ZooError as _Base
except ImportError:  # deployed on its own, without zoo
    _Base = Exception  # type: ignore[misc, assignment]


class RuntimeInputError(_Base, ValueError):  # type: ignore[misc, valid-type]
    """A model file, image or option the runtime cannot use; the message says how to fix it."""
