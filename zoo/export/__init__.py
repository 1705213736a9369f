"""Export trained models: a self-describing ``.safetensors`` file and validated ONNX.

    >>> from zoo.export import export
    >>> export("runs/cats", ["onnx", "safetensors"], "deploy/")   # a checkpoint directory
    >>> export("resnet34", ["onnx"], "deploy/", pretrained=True)   # or a registry name

Formats are looked up in the ``register_exporters`` table, so plugins add
their own next to the built-in ``onnx`` and ``safetensors``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

from zoo.errors import ExportError
from zoo.io import export_entries, publish_folder, refuse_output

EXPORT_WAY_OUT = "write to another --out (or --name), or pass --overwrite to move its files aside"


def export(
    source: str | os.PathLike,
    formats: Sequence[str],
    out_dir: str | os.PathLike,
    *,
    pretrained: bool | str = False,
    num_classes: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    overwrite: bool = False,
    **options: Any,
) -> dict[str, Path]:
    """Export a checkpoint (or a registry model) to each format; returns format -> written file.

    ``formats`` may contain ``all`` for every registered format. Options go
    to every exporter (ONNX: ``opset``, ``exporter``, ``data``, ``warn_only``,
    ``batch_size``, ``atol``, ``quantize``, ``spatial``; all: ``name``, ``log``).

    The files are written into a temporary folder beside ``out_dir`` and
    moved in only when every format succeeded (or int8 alone was refused:
    the report says so), so ``out_dir`` holds one consistent export. An
    ``out_dir`` that holds an export of ``name`` already is refused
    (:class:`zoo.errors.OutputExistsError`); ``overwrite`` moves its files
    aside to ``<out_dir>.old-<time>`` when the new export is in place.
    """
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
    out, stem = Path(out_dir), str(options.get("name", "model"))
    stale = export_entries(out, stem)
    if not overwrite:
        refuse_output(out, stale, what="an export", way_out=EXPORT_WAY_OUT)
    return _write_all([table.get(name) for name in names], model, config, out, stale, options)


def _write_all(formats: list[Any], model: Any, config: dict[str, Any], out: Path, stale: list[str],
               options: dict[str, Any]) -> dict[str, Path]:
    """Each format into a temporary folder beside ``out``, then into ``out`` with ``stale`` moved aside."""
    from zoo._lazy import resolve
    from zoo.export.quantize import QuantizationRefused

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    written: dict[str, Path] = {}
    try:
        try:
            for fmt in formats:
                path = Path(resolve(fmt.export)(model, config, work, **options))
                written[fmt.name] = out / path.relative_to(work) if path.is_relative_to(work) else path
        except QuantizationRefused:  # the float model stands, and its report records the refusal
            publish_folder(work, out, stale)
            raise
        publish_folder(work, out, stale)
    finally:
        shutil.rmtree(work, ignore_errors=True)
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
