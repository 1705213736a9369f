"""An example zoo plugin (see plugin.py for the hooks)."""

__version__ = "0.2.0"
