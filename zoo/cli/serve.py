"""``zoo serve``: the runtime's own command (zoo/runtime/cli.py), so ``zoo serve`` and the
torch-free ``zoo-runtime serve`` are one command with one set of options."""

from __future__ import annotations

from zoo.runtime.cli import serve_command

__all__ = ["serve_command"]
