"""fp16 and dynamic int8 variants of an exported model, with their accuracy change.

fp16 converts weights and activations to half precision but keeps float32
inputs and outputs (the runtime feeds them unchanged). int8 is onnxruntime's
dynamic quantisation of the MatMul/Gemm weights (convolutions stay float:
ConvInteger has no fast CPU kernel in onnxruntime). Each variant carries the
same metadata. With ``data`` (an image folder) the report gives top-1
accuracy against the folder's class sub-folders when they match the class
names, and always the agreement with the float32 model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo.errors import ExportError

KINDS = ("fp16", "int8")
MAX_EVAL_IMAGES = 512


def quantize_model(
    path: Path,
    config: dict[str, Any],
    kinds: Sequence[str],
    *,
    data: str | os.PathLike | None = None,
    log: Any = None,
) -> dict[str, Any]:
    """Write ``<stem>.<kind>.onnx`` for each kind; returns what each changed."""
    say = log or (lambda line: None)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ExportError(f"unknown quantisation {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    results: dict[str, Any] = {}
    evaluation = _EvalSet(config, data) if data is not None else None
    base = evaluation.run(path) if evaluation else None
    for kind in dict.fromkeys(kinds):
        target = path.with_name(f"{path.stem}.{kind}.onnx")
        from zoo.io import atomic_write

        atomic_write(target, lambda tmp, kind=kind: _convert(path, tmp, kind))
        entry: dict[str, Any] = {
            "file": target.name,
            "size_mb": round(target.stat().st_size / 1e6, 2),
            "float32_size_mb": round(path.stat().st_size / 1e6, 2),
        }
        if evaluation:
            entry.update(evaluation.compare(base, evaluation.run(target)))
        results[kind] = entry
        say(f"{target}: {_summary(entry)}")
    return results


def _convert(src: Path, dst: Path, kind: str) -> None:
    import onnx

    if kind == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = onnx.load(str(src))
        meta = list(model.metadata_props)
        half = convert_float_to_float16(model, keep_io_types=True)
        del half.metadata_props[:]
        half.metadata_props.extend(meta)
        onnx.save_model(half, str(dst))
    else:
        import logging

        from onnxruntime.quantization import QuantType, quantize_dynamic

        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser logs advice about calibration tools to the root logger
        try:
            quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul", "Gemm"], weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        model = onnx.load(str(dst))
        if not model.metadata_props:  # older quantisers drop them
            model.metadata_props.extend(onnx.load(str(src), load_external_data=False).metadata_props)
            onnx.save_model(model, str(dst))


class _EvalSet:
    """Images (and labels where the folder's classes match) to compare variants on."""

    def __init__(self, config: dict[str, Any], data: str | os.PathLike) -> None:
        from zoo.export.validate import preprocessing_of
        from zoo.runtime import list_images

        paths = list_images([data])
        if not paths:
            raise ExportError(f"--data {str(data)!r} holds no images to measure the quantised accuracy on")
        step = max(1, len(paths) // MAX_EVAL_IMAGES)
        self.paths = paths[::step][:MAX_EVAL_IMAGES]
        names = list(config.get("class_names") or [])
        index = {n: i for i, n in enumerate(names)}
        labels = [index.get(p.parent.name) for p in self.paths]
        self.labels = np.array(labels) if labels and all(v is not None for v in labels) else None
        self.pre = preprocessing_of(config)
        self.batch = self.pre.load_batch(self.paths)

    def run(self, path: Path) -> np.ndarray:
        from zoo.runtime.model import open_session

        session = open_session(path, provider="cpu")
        outs = [session.run(None, {"input": self.batch[i : i + 64]})[0] for i in range(0, len(self.batch), 64)]
        return np.concatenate(outs).astype(np.float64)

    def compare(self, base: np.ndarray, other: np.ndarray) -> dict[str, Any]:
        from zoo.runtime.model import softmax

        out: dict[str, Any] = {
            "images": len(self.paths),
            "top1_agreement": float((base.argmax(1) == other.argmax(1)).mean()),
            "max_abs_diff": float(np.abs(base - other).max()),
        }
        if base.ndim == 2:
            out["max_prob_diff"] = float(np.abs(softmax(base) - softmax(other)).max())
        if self.labels is not None and base.ndim == 2:
            acc32 = float((base.argmax(1) == self.labels).mean())
            acc = float((other.argmax(1) == self.labels).mean())
            out.update({"float32_accuracy": acc32, "accuracy": acc, "accuracy_change": acc - acc32})
        return out


def _summary(entry: dict[str, Any]) -> str:
    text = f"{entry['size_mb']} MB (float32 {entry['float32_size_mb']} MB)"
    if "accuracy" in entry:
        text += f", accuracy {entry['accuracy']:.4f} vs {entry['float32_accuracy']:.4f} ({entry['accuracy_change']:+.4f})"
    if "top1_agreement" in entry:
        text += f", top-1 agreement {entry['top1_agreement']:.4f} on {entry['images']} images"
    return text
