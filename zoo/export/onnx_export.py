"""ONNX export with metadata, onnx.checker and automatic validation.

Exporter choice (torch 2.14): ``torch.onnx.export`` defaults to the dynamo
exporter (``dynamo=True``). On the builtin models the TorchScript exporter
(``dynamo=False``) was as exact, 5-15x faster to export, and more honest about
dynamic spatial sizes: for AlexNet and VGG (adaptive pooling to 7x7) it refuses
dynamic height/width, while dynamo exports a graph that fails at any other size.
So ``exporter="auto"`` tries TorchScript first and falls back to dynamo when
TorchScript cannot export or validate a model; ``--exporter`` forces either.

Dynamic axes: the batch axis always; height and width when the PyTorch model
runs at another size and the exported graph validates there too, otherwise
they stay fixed at the checkpoint's input size (``dynamic_axes`` in the
metadata and the report say which).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from zoo.errors import ExportError
from zoo.export import validate as val
from zoo.export.source import forward_module
from zoo.runtime import metadata as md
from zoo.text import first_line

DEFAULT_OPSET = 18
MIN_OPSET = 14  # scaled_dot_product_attention and friends need 14
EXPORTERS = ("auto", "torchscript", "dynamo")
_PROTO_LIMIT = 2_000_000_000  # protobuf's 2 GB: bigger models keep weights in an external file


def export_onnx(
    model: Any,
    config: dict[str, Any],
    out_dir: str | os.PathLike,
    *,
    name: str = "model",
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
    spatial: str = "auto",
    data: str | os.PathLike | None = None,
    batch_size: int = 4,
    atol: float = 1e-4,
    warn_only: bool = False,
    quantize: Sequence[str] = (),
    quantize_options: dict[str, Any] | None = None,
    real_images: bool = True,
    log: Any = None,
    **_ignored: Any,
) -> Path:
    """Export ``model`` to ``out_dir/name.onnx``, validate it, write ``name.validation.json``.

    ``spatial`` is ``auto`` (dynamic height/width where the model allows),
    ``dynamic`` or ``static``. ``real_images=False`` validates on random
    tensors only (quicker for very large models). Nothing is left in ``out_dir`` when the export
    fails or does not validate (unless ``warn_only``). ``quantize`` may name
    ``fp16`` and ``int8``; each writes ``name.fp16.onnx`` / ``name.int8.onnx``
    (``quantize_options``: see :func:`zoo.export.quantize.quantize_model`).
    """
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter {exporter!r}; choose from {', '.join(EXPORTERS)}")
    if spatial not in ("auto", "dynamic", "static"):
        raise ExportError(f"spatial must be auto, dynamic or static, not {spatial!r}")
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is too old for zoo's models; use {MIN_OPSET} or newer (default {DEFAULT_OPSET})")
    say = log or (lambda line: None)
    import torch

    arch = config.get("architecture", "?")
    module, task = forward_module(model, config)
    module = module.to("cpu").eval()
    c, h, w = (int(v) for v in config["input_size"])
    skipped = val.SkipReport()
    inputs, source_of_images = val.validation_inputs(config, batch_size, data, real_images=real_images,
                                                     skipped=skipped)
    if skipped:
        say(f"validation images: {skipped.describe()}")

    def reference(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).float().numpy()

    spatial_inputs: dict[str, np.ndarray] = {}
    if spatial != "static":
        h2, w2 = val.other_size(h, w)
        probe = np.random.default_rng(1).standard_normal((2, c, h2, w2)).astype(np.float32)
        try:
            reference(probe[:1])
            spatial_inputs = {f"random, batch 2, {h2}x{w2}": probe}
        except Exception as exc:
            if spatial == "dynamic":
                raise ExportError(f"{arch} does not run at {h2}x{w2} in PyTorch, so its spatial size cannot be dynamic: {first_line(exc)}") from None
            say(f"{arch}: fixed input size {h}x{w} (the PyTorch model does not run at {h2}x{w2})")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{name}.onnx"
    work = Path(tempfile.mkdtemp(prefix=f".{name}.onnx-", dir=out_dir))
    attempts: list[dict[str, Any]] = []
    try:
        chosen = None
        for kind in (("torchscript", "dynamo") if exporter == "auto" else (exporter,)):
            for dynamic_hw in ((True, False) if spatial_inputs else (False,)):
                start = time.perf_counter()
                attempt: dict[str, Any] = {"exporter": kind, "dynamic_spatial": dynamic_hw}
                attempts.append(attempt)
                target = work / final.name
                try:
                    proto = _export(module, (2, c, h, w), target, kind, opset, task, dynamic_hw)
                except Exception as exc:
                    attempt["error"] = _export_error(exc, arch, kind, opset)
                    say(f"{kind} exporter, {'dynamic' if dynamic_hw else 'fixed'} size: {attempt['error']}")
                    continue
                attempt["export_seconds"] = round(time.perf_counter() - start, 3)
                _finish(proto, target, config, task, dynamic_hw)
                del proto
                checks = _validate(target, reference, {**inputs, **(spatial_inputs if dynamic_hw else {})}, atol)
                attempt.update(val.summarise(checks))
                attempt["file"] = target
                if attempt["passed"]:
                    chosen = attempt
                    break
                say(f"{kind} exporter, {'dynamic' if dynamic_hw else 'fixed'} size: {val.describe_failure(checks)}")
                # Kept aside for --warn-only; the fixed-size graph (or the next exporter) may still validate.
                # A folder of its own keeps the file's name, which its external weights (>2 GB) refer to.
                attempt["file"] = _set_aside(target, work / f"failed-{kind}-{int(dynamic_hw)}")
            if chosen is not None:
                break
        if chosen is None:
            chosen = _no_success(attempts, arch, atol, warn_only, say)
        report = _report(config, chosen, attempts, opset, atol, source_of_images, final, task)
        report["skipped"] = skipped.to_dict()
        _place(chosen["file"], final)
        val.write_report(out_dir / f"{name}.validation.json", report)
        if quantize:
            from zoo.export.quantize import QuantizationRefused, quantize_model

            try:
                report["quantized"] = quantize_model(final, config, quantize, data=data, log=say, **(quantize_options or {}))
            except QuantizationRefused as refused:  # the report still says what was measured
                report["quantized"] = refused.results
                val.write_report(out_dir / f"{name}.validation.json", report)
                raise
            val.write_report(out_dir / f"{name}.validation.json", report)
        say(
            f"{final}: {report['exporter']} exporter, opset {opset}, max abs diff"
            f" {report['max_abs_diff']:.2e} over {len(report['checks'])} checks"
            + ("" if report["passed"] else " (ABOVE TOLERANCE: kept because of --warn-only)")
        )
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- exporting ----------------------------------------------------------------


def _export(module: Any, shape: tuple[int, ...], path: Path, kind: str, opset: int, task: str, dynamic_hw: bool) -> Any:
    """Export to ``path``; returns the ``onnx.ModelProto`` when it had to be loaded (dynamo), else None."""
    import onnx
    import torch

    example = torch.randn(*shape)
    out_name = md.OUTPUT_NAMES[task]
    with _quiet():
        if kind == "torchscript":
            in_axes = {0: "batch", **({2: "height", 3: "width"} if dynamic_hw else {})}
            out_axes = {0: "batch", **({2: "height", 3: "width"} if dynamic_hw and task == "reconstruction" else {})}
            torch.onnx.export(
                module,
                (example,),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=[md.INPUT_NAME],
                output_names=[out_name],
                dynamic_axes={md.INPUT_NAME: in_axes, out_name: out_axes},
                do_constant_folding=True,
            )
            return None
        else:
            dims: dict[int, Any] = {0: torch.export.Dim("batch", min=1, max=65536)}
            if dynamic_hw:
                dims[2] = torch.export.Dim("height", min=8, max=8192)
                dims[3] = torch.export.Dim("width", min=8, max=8192)
            torch.onnx.export(
                module,
                (example,),
                str(path),
                dynamo=True,
                opset_version=max(opset, 18),  # the dynamo exporter starts at 18
                input_names=[md.INPUT_NAME],
                output_names=[out_name],
                dynamic_shapes=(dims,),
                optimize=True,
                verbose=False,
            )
            proto = onnx.load(str(path))  # also pulls in the external weights it may have written
            for extra in path.parent.glob(f"{path.name}*.data"):
                extra.unlink()
            return proto


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' progress lines, deprecation notes and C++ graph dumps."""
    with warnings.catch_warnings(), tempfile.TemporaryFile(mode="w+b") as sink:
        warnings.simplefilter("ignore")
        saved = []
        try:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                    fd = stream.fileno()
                except (AttributeError, OSError, ValueError):  # captured streams without a descriptor
                    continue
                saved.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
            with contextlib.redirect_stdout(_Null()), contextlib.redirect_stderr(_Null()):
                yield
        finally:
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


_OP_PATTERNS = (
    re.compile(r"operator '?([A-Za-z_][\w:.]*)'?"),
    re.compile(r"OpOverload\(op='([\w.]+)'"),
    re.compile(r"target=torch\.ops\.([\w.]+)"),
)


def _export_error(exc: BaseException, arch: str, kind: str, opset: int) -> str:
    """One line naming the operator (when the message tells) and the architecture."""
    text = str(exc)
    for pattern in _OP_PATTERNS:
        found = pattern.search(text)
        if found:
            op = found.group(1)
            return f"operator {op} of {arch} cannot be exported by the {kind} exporter at opset {opset}"
    lines = [line.strip() for line in text.splitlines() if line.strip() and "Torch IR graph" not in line]
    return f"{arch} cannot be exported by the {kind} exporter: {type(exc).__name__}: {(lines[0] if lines else '')[:200]}"


def _finish(proto: Any, target: Path, config: dict[str, Any], task: str, dynamic_hw: bool) -> None:
    """Add zoo's metadata to the file at ``target`` (or to ``proto``, then save it) and run onnx.checker.

    For a file, the metadata is appended as a second serialized ModelProto:
    protobuf merges concatenated messages (repeated fields extend, scalars take
    the last value), so hundreds of megabytes of weights are not parsed and
    written again just to add a few strings.
    """
    import onnx

    from zoo import __version__
    props = md.encode(
        {
            md.CLASS_NAMES: list(config.get("class_names") or []),
            md.MEAN: list(config["mean"]),
            md.STD: list(config["std"]),
            md.INPUT_SIZE: list(config["input_size"]),
            md.ARCHITECTURE: {
                "name": config.get("architecture"),
                "kwargs": config.get("model_kwargs", {}),
                "num_classes": config.get("num_classes"),
                "in_chans": config.get("in_chans"),
            },
            md.TASK: task,
            md.MULTI_LABEL: bool(config.get("multi_label")),
            md.DYNAMIC_AXES: {"batch": True, "spatial": bool(dynamic_hw)},
            md.ZOO_VERSION: __version__,
            md.ZOO_CONFIG: config,
        }
    )
    tail = onnx.ModelProto() if proto is None else proto
    del tail.metadata_props[:]
    for key, value in props.items():
        entry = tail.metadata_props.add()
        entry.key, entry.value = key, value
    tail.producer_name = "zoo"
    tail.producer_version = __version__
    tail.doc_string = f"{config.get('architecture')} exported by zoo {__version__}"
    if proto is None:
        with open(target, "ab") as fh:
            fh.write(tail.SerializeToString())
    elif sum(len(t.raw_data) for t in proto.graph.initializer) > _PROTO_LIMIT:
        onnx.save_model(proto, str(target), save_as_external_data=True, location=f"{target.name}.data")
    else:
        onnx.save_model(proto, str(target))
    try:
        onnx.checker.check_model(str(target), full_check=False)
    except Exception as exc:
        raise ExportError(f"onnx.checker rejects the export of {config.get('architecture')}: {first_line(exc)}") from None


def _validate(path: Path, reference: Any, inputs: dict[str, np.ndarray], atol: float) -> list[val.Check]:
    from zoo.runtime.model import open_session

    session = open_session(path, provider="cpu")
    return val.compare(session, reference, inputs, atol, input_name=md.INPUT_NAME)


def _no_success(attempts: list[dict[str, Any]], arch: str, atol: float, warn_only: bool, say: Any) -> dict[str, Any]:
    validated = [a for a in attempts if "passed" in a and a.get("max_abs_diff") is not None]
    if warn_only and validated:
        best = min(validated, key=lambda a: a["max_abs_diff"])
        if all(ch["error"] is None for ch in best["checks"]):
            say(f"warning: {arch} exceeds the tolerance {atol:g} (max abs diff {best['max_abs_diff']:.3g}); kept because of --warn-only")
            return best
    reasons = []
    for a in attempts:
        if "error" in a:
            reasons.append(a["error"])
        elif not a.get("passed"):
            checks = [val.Check(**ch) for ch in a["checks"]]
            reasons.append(f"{a['exporter']} export does not match PyTorch ({val.describe_failure(checks)})")
    unique = list(dict.fromkeys(reasons))
    hint = "" if warn_only else "; --warn-only keeps an export that runs but exceeds the tolerance"
    raise ExportError(f"ONNX export of {arch} failed: " + "; ".join(unique) + hint)


def _report(
    config: dict[str, Any],
    chosen: dict[str, Any],
    attempts: list[dict[str, Any]],
    opset: int,
    atol: float,
    images: str,
    final: Path,
    task: str,
) -> dict[str, Any]:
    import onnxruntime
    import torch

    return {
        "file": final.name,
        "architecture": config.get("architecture"),
        "task": task,
        "exporter": chosen["exporter"],
        "opset": opset if chosen["exporter"] == "torchscript" else max(opset, 18),
        "dynamic_axes": {"batch": True, "spatial": chosen["dynamic_spatial"]},
        "input_size": list(config["input_size"]),
        "tolerance": atol,
        "tolerance_rule": "max abs diff <= tolerance * max(1, max |PyTorch output|)",
        "passed": chosen["passed"],
        "max_abs_diff": chosen["max_abs_diff"],
        "real_inputs": images,
        "checks": chosen["checks"],
        "attempts": [
            {k: v for k, v in a.items() if k in ("exporter", "dynamic_spatial", "error", "passed", "max_abs_diff", "export_seconds")}
            for a in attempts
        ],
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
    }


def _set_aside(file: Path, folder: Path) -> Path:
    """Move ``file`` and its external-data file into ``folder`` under the same names."""
    folder.mkdir()
    data = file.with_name(f"{file.name}.data")
    if data.exists():
        os.replace(data, folder / data.name)
    os.replace(file, folder / file.name)
    return folder / file.name


def _place(file: Path, final: Path) -> None:
    data = file.with_name(f"{file.name}.data")
    if data.exists():
        os.replace(data, final.with_name(f"{final.name}.data"))
    with open(file, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(file, final)
