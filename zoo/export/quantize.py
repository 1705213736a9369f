"""fp16 and int8 variants of an exported model, with their accuracy change.

fp16 converts weights and activations to half precision but keeps float32
inputs and outputs (the runtime feeds them unchanged). int8 comes in two
kinds (``int8_mode``):

* ``static``: onnxruntime's ``quantize_static`` in the QDQ format, weights
  per channel, activations calibrated on images from ``data``. ONNX Runtime
  fuses the QDQ pairs into integer convolutions, which is what makes a CNN
  faster. Calibration images and the images the accuracy is measured on are
  disjoint, and the export fails when accuracy drops by more than
  ``max_accuracy_drop`` points.
* ``dynamic``: the MatMul/Gemm weights only, activations quantised at run
  time; no calibration. For transformer-style models, where matrix products
  dominate.

``auto`` (the default) takes static for graphs with at least as many
convolutions as matrix products, else dynamic. Each variant carries the same metadata. With ``data`` the report
gives top-1 accuracy against the folder's class sub-folders when they match
the class names, and always the agreement with the float32 model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo.errors import ExportError

KINDS = ("fp16", "int8")
INT8_MODES = ("auto", "static", "dynamic")
MAX_EVAL_IMAGES = 512
CALIBRATION_IMAGES = 128


class QuantizationRefused(ExportError):
    """A variant lost more accuracy than allowed; ``results`` says how much, for the report."""

    def __init__(self, message: str, results: dict[str, Any]) -> None:
        super().__init__(message)
        self.results = results


def quantize_model(
    path: Path,
    config: dict[str, Any],
    kinds: Sequence[str],
    *,
    data: str | os.PathLike | None = None,
    int8_mode: str = "auto",
    max_accuracy_drop: float = 1.0,
    calibration_images: int = CALIBRATION_IMAGES,
    log: Any = None,
) -> dict[str, Any]:
    """Write ``<stem>.<kind>.onnx`` for each kind; returns what each changed.

    A static int8 variant that loses more than ``max_accuracy_drop`` points
    (of accuracy, or of top-1 agreement with float32 when the folder has no
    matching labels) is not written: :class:`QuantizationRefused`.
    """
    from zoo.io import atomic_write

    say = log or (lambda line: None)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ExportError(f"unknown quantisation {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    if int8_mode not in INT8_MODES:
        raise ExportError(f"unknown int8 mode {int8_mode!r}; choose from {', '.join(INT8_MODES)}")
    mode = _int8_mode(path, int8_mode) if "int8" in kinds else None
    if mode == "static" and data is None:
        raise ExportError(
            "static int8 calibrates on images: give --data DIR (a few hundred images like the ones served),"
            " or --int8-mode dynamic (MatMul/Gemm only, little gain for a CNN)"
        )
    results: dict[str, Any] = {}
    evaluation = _EvalSet(config, data, calibration_images if mode == "static" else 0) if data is not None else None
    base = evaluation.run(path) if evaluation else None
    for kind in dict.fromkeys(kinds):
        target = path.with_name(f"{path.stem}.{kind}.onnx")
        entry: dict[str, Any] = {"file": target.name, "float32_size_mb": round(path.stat().st_size / 1e6, 2)}
        if kind == "int8":
            entry["mode"] = mode
        if kind == "int8" and mode == "static":
            entry["calibration_images"] = len(evaluation.calibration)
            entry["max_accuracy_drop"] = max_accuracy_drop

        def write(tmp: Path, kind: str = kind, entry: dict[str, Any] = entry) -> None:
            _convert(path, tmp, kind, mode, evaluation)
            entry["size_mb"] = round(tmp.stat().st_size / 1e6, 2)
            if evaluation:
                entry.update(evaluation.compare(base, evaluation.run(tmp)))
            if kind == "int8" and mode == "static" and entry["accuracy_drop_points"] > max_accuracy_drop:
                entry["refused"] = True
                results[kind] = entry
                raise QuantizationRefused(
                    f"static int8 lost {entry['accuracy_drop_points']:.2f} points of {entry['drop_measured_on']}"
                    f" on {entry['images']} images not used for calibration (allowed: {max_accuracy_drop:g},"
                    f" --max-accuracy-drop); {target.name} was not written, {path.name} is unchanged",
                    results,
                )

        atomic_write(target, write)
        results[kind] = entry
        say(f"{target}: {_summary(entry)}")
    return results


def _int8_mode(path: Path, requested: str) -> str:
    """``auto``: static for graphs made mostly of convolutions (CNNs), dynamic for those made of matrix
    products (a ViT has one convolution, its patch embedding, against dozens of MatMuls)."""
    if requested != "auto":
        return requested
    import onnx

    ops = [node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node]
    convs, products = ops.count("Conv"), ops.count("MatMul") + ops.count("Gemm")
    return "static" if convs and convs >= products else "dynamic"


def _convert(src: Path, dst: Path, kind: str, mode: str | None = None, evaluation: Any = None) -> None:
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
            if mode == "static":
                _quantize_static(src, dst, evaluation.calibration_batches())
            else:
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul", "Gemm"], weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        model = onnx.load(str(dst))
        if not model.metadata_props:  # older quantisers drop them
            model.metadata_props.extend(onnx.load(str(src), load_external_data=False).metadata_props)
            onnx.save_model(model, str(dst))


def _quantize_static(src: Path, dst: Path, batches: list[np.ndarray]) -> None:
    """QDQ int8: per-channel symmetric int8 weights, uint8 activations calibrated (min/max) on ``batches``."""
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.left, None)
            return None if batch is None else {"input": batch}

    with tempfile.TemporaryDirectory(prefix=".zoo-int8-", dir=dst.parent) as work:
        prepared = Path(work) / "prepared.onnx"
        # shape inference and graph folding first, as onnxruntime advises: BatchNorms fold into convs
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )


class _EvalSet:
    """Images (and labels where the folder's classes match) to compare variants on.

    With ``calibration > 0``, that many images (spread over the folder) are
    set aside for static int8's calibration and never measured on.
    """

    def __init__(self, config: dict[str, Any], data: str | os.PathLike, calibration: int = 0) -> None:
        from zoo.export.validate import data_images, preprocessing_of

        paths, shows = data_images(data)
        shown = dict(zip(paths, shows))
        if not paths:
            raise ExportError(f"--data {str(data)!r} holds no images to measure the quantised accuracy on")
        self.pre = preprocessing_of(config)
        if calibration > 0:
            if len(paths) < 2:
                raise ExportError(f"--data {str(data)!r} needs at least 2 images: some to calibrate int8, others to measure it")
            order = np.random.default_rng(0).permutation(len(paths))
            count = min(int(calibration), len(paths) // 2)
            self.calibration = [paths[i] for i in sorted(order[:count])]
            paths = [paths[i] for i in sorted(order[count:])]
        else:
            self.calibration = []
        step = max(1, len(paths) // MAX_EVAL_IMAGES)
        self.paths = paths[::step][:MAX_EVAL_IMAGES]
        names = list(config.get("class_names") or [])
        index = {n: i for i, n in enumerate(names)}
        labels = [index.get(shown[p]) for p in self.paths]
        self.labels = np.array(labels) if labels and all(v is not None for v in labels) else None
        self.batch = self.pre.load_batch(self.paths)

    def calibration_batches(self, size: int = 16) -> list[np.ndarray]:
        return [self.pre.load_batch(self.calibration[i : i + size]) for i in range(0, len(self.calibration), size)]

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
            out.update({"accuracy_drop_points": round(100 * (acc32 - acc), 3), "drop_measured_on": "accuracy"})
        else:  # no labels to score against: how often it leaves float32's answer
            out.update({"accuracy_drop_points": round(100 * (1 - out["top1_agreement"]), 3),
                        "drop_measured_on": "top-1 agreement with float32"})
        return out


def _summary(entry: dict[str, Any]) -> str:
    text = f"{entry['size_mb']} MB (float32 {entry['float32_size_mb']} MB)"
    if entry.get("mode"):
        calibrated = f", calibrated on {entry['calibration_images']} images" if "calibration_images" in entry else ""
        text = f"{entry['mode']} int8{calibrated}, " + text
    if "accuracy" in entry:
        text += f", accuracy {entry['accuracy']:.4f} vs {entry['float32_accuracy']:.4f} ({entry['accuracy_change']:+.4f})"
    if "top1_agreement" in entry:
        text += f", top-1 agreement {entry['top1_agreement']:.4f} on {entry['images']} images"
    return text
