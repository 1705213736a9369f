"""The runtime's one error type.

The runtime imports nothing of the rest of zoo, so this is a plain
``ValueError``; the ``zoo`` CLI treats it like its own user errors and shows
it as a one-line message.
"""

from __future__ import annotations


class RuntimeInputError(ValueError):
    """A model file, image or option the runtime cannot use; the message says how to fix it."""
