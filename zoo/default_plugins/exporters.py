"""Built-in export formats (torch-free: the exporters load on use)."""

from __future__ import annotations

import zoo
from zoo.extensions import ExportFormat


@zoo.hookimpl
def register_exporters(register):
    """Register ``onnx`` and ``safetensors``."""
    register(
        ExportFormat(
            name="onnx",
            export="zoo.export.onnx_export:export_onnx",
            suffix=".onnx",
            description="ONNX with preprocessing and class names in its metadata, validated against PyTorch",
        )
    )
    register(
        ExportFormat(
            name="safetensors",
            export="zoo.export.safetensors_export:export_safetensors",
            suffix=".safetensors",
            description="weights plus the model config in the header; zoo.load() rebuilds the model",
        )
    )
