"""Error types that carry a message meant for the user.

The CLI turns every :class:`ZooError` into a one-line message and a non-zero
exit; anything else is a bug and gets a hint to re-run with ``--debug``.
"""

from __future__ import annotations


class ZooError(Exception):
    """Base class for errors caused by user input or the environment."""


class UnknownModelError(ZooError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(ZooError, ValueError):
    """Two plugins registered the same name."""


class InvalidSpecError(ZooError, ValueError):
    """A registration that does not describe a usable thing."""


class PluginError(ZooError):
    """A plugin could not be loaded or one of its hooks raised."""


class CheckpointError(ZooError):
    """A checkpoint directory or weight file that cannot be used."""


class DataError(ZooError):
    """A dataset that cannot be read or is unsuitable for the task."""


class WeightsNotFoundError(ZooError):
    """Pretrained weights that are not on disk and cannot be downloaded."""


class ExportError(ZooError):
    """An export that failed or did not validate."""


class OutputExistsError(ZooError):
    """An output folder that already holds a run or an export (a second run never destroys the first)."""


class NothingToResumeError(ZooError):
    """``--resume`` of a run that has already trained every epoch asked for."""
