"""Export trained models: a self-describing ``.safetensors`` file and validated ONNX.

    >>> from zoo.export import export
    >>> export("runs/cats", ["onnx", "safetensors"], "deploy/")   # a checkpoint directory
    >>> export("resnet34", ["onnx"], "deploy/", pretrained=True)   # or a registry name

Formats are looked up in the ``register_exporters`` table, so plugins add
their own next to the built-in ``onnx`` and ``safetensors``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from zoo.errors import ExportError


def export(
    source: str | os.PathLike,
    formats: Sequence[str],
    out_dir: str | os.PathLike,
    *,
    pretrained: bool | str = False,
    num_classes: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    **options: Any,
) -> dict[str, Path]:
    """Export a checkpoint (or a registry model) to each format; returns format -> written file.

    ``formats`` may contain ``all`` for every registered format. Options go
    to every exporter (ONNX: ``opset``, ``exporter``, ``data``, ``warn_only``,
    ``batch_size``, ``atol``, ``quantize``, ``spatial``; all: ``name``, ``log``).
    """
    from zoo._lazy import resolve
    from zoo.export.source import load_source
    from zoo.plugins import export_formats

    table = export_formats()
    names = list(dict.fromkeys(f.name for f in table)) if "all" in formats else list(dict.fromkeys(formats))
    if not names:
        raise ExportError("no export format given; use --format onnx, safetensors or all")
    for name in names:
        table.get(name)  # unknown formats fail before any work, naming the known ones
    if options.get("data") is not None:  # a folder or a named source (demo:cats), as everywhere
        from zoo.data.folder import resolve_data_path

        options["data"] = str(resolve_data_path(options["data"]))
    model, config = load_source(source, pretrained=pretrained, num_classes=num_classes, model_kwargs=model_kwargs)
    written: dict[str, Path] = {}
    for name in names:
        fmt = table.get(name)
        written[name] = Path(resolve(fmt.export)(model, config, out_dir, **options))
    return written


def export_onnx(model: Any, config: dict[str, Any], out_dir: str | os.PathLike, **options: Any) -> Path:
    """See :func:`zoo.export.onnx_export.export_onnx`."""
    from zoo.export.onnx_export import export_onnx as run

    return run(model, config, out_dir, **options)


def export_safetensors(model: Any, config: dict[str, Any], out_dir: str | os.PathLike, **options: Any) -> Path:
    """See :func:`zoo.export.safetensors_export.export_safetensors`."""
    from zoo.export.safetensors_export import export_safetensors as run

    return run(model, config, out_dir, **options)


__all__ = ["export", "export_onnx", "export_safetensors"]
