"""``zoo bench``: PyTorch eager against ONNX Runtime on the same inputs and device.

Latency is batch 1, the median of ``runs`` timed calls after ``warmup``
untimed ones; throughput is images per second at ``batch_size``. The two
engines take turns call by call, so a machine shared with other work slows
both alike and their ratio stays meaningful.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from zoo.errors import ExportError


def bench(
    source: str | os.PathLike,
    *,
    runs: int = 30,
    warmup: int = 5,
    batch_size: int = 32,
    throughput_runs: int = 5,
    threads: int | None = None,
    device: str = "auto",
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Time ``source`` (a registry name, a checkpoint or an ``.onnx`` file) in both engines."""
    import torch

    say = log or (lambda line: None)
    if threads:
        torch.set_num_threads(int(threads))
    from zoo.devices import onnx_provider, select_device

    device = select_device(device)
    provider = onnx_provider(device)
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        model, config, onnx_path = _models(source, Path(tmp), say)
        from zoo.runtime.model import open_session

        # no busy-waiting between runs: it would steal the cores from PyTorch's turn
        session = open_session(onnx_path, provider=provider, threads=threads, spinning=False)
        c, h, w = (int(v) for v in config["input_size"])
        rng = np.random.default_rng(0)
        small = rng.standard_normal((1, c, h, w)).astype(np.float32)
        large = rng.standard_normal((batch_size, c, h, w)).astype(np.float32)
        engines: dict[str, Callable[[np.ndarray], Any]] = {"onnxruntime": _ort_call(session)}
        if model is not None:
            engines = {"pytorch": _torch_call(model, device), **engines}
        say(f"timing {', '.join(engines)} on {device}: batch 1 x {runs} runs, batch {batch_size} x {throughput_runs}")
        latency = _interleaved(engines, small, warmup, runs)
        throughput = _interleaved(engines, large, 1, throughput_runs)
    results = []
    for name in engines:
        lat = latency[name]
        results.append(
            {
                "engine": name,
                "device": str(device) if name == "pytorch" else session.get_providers()[0],
                "latency_ms": 1000 * statistics.median(lat),
                "latency_p90_ms": 1000 * _quantile(lat, 0.9),
                "throughput_ips": batch_size / statistics.median(throughput[name]),
            }
        )
    report: dict[str, Any] = {
        "model": str(source),
        "architecture": config.get("architecture"),
        "input_size": [c, h, w],
        "batch_size": batch_size,
        "runs": runs,
        "warmup": warmup,
        "threads": threads or torch.get_num_threads(),
        "torch_version": torch.__version__,
        "results": results,
    }
    if model is not None:
        report["speedup_latency"] = results[0]["latency_ms"] / results[1]["latency_ms"]
        report["speedup_throughput"] = results[1]["throughput_ips"] / results[0]["throughput_ips"]
    return report


def onnx_latency_ms(path: str | os.PathLike, input_size: Any, *, threads: int | None = None, runs: int = 20,
                    warmup: int = 3) -> float:
    """Median batch-1 latency (ms) of an ``.onnx`` file in ONNX Runtime on the CPU, on random input."""
    from zoo.runtime.model import open_session

    session = open_session(path, provider="cpu", threads=threads, spinning=False)
    x = np.random.default_rng(0).standard_normal((1, *(int(v) for v in input_size))).astype(np.float32)
    return 1000 * statistics.median(_interleaved({"onnxruntime": _ort_call(session)}, x, warmup, runs)["onnxruntime"])


def _models(source: str | os.PathLike, tmp: Path, say: Callable[[str], None]) -> tuple[Any, dict[str, Any], Path]:
    """The PyTorch model (None when it cannot be rebuilt), its config and an ONNX file."""
    from zoo.export.source import forward_module, load_source

    if str(source).lower().endswith(".onnx"):
        from zoo.runtime import load

        onnx_model = load(source, provider="cpu")
        config = dict(onnx_model.metadata.get("zoo_config") or {})
        config.setdefault("input_size", list(onnx_model.preprocessing.input_size))
        model = None
        if config.get("architecture"):
            from zoo.checkpoint import build_model

            try:  # same architecture, random weights: the timing does not depend on them
                model = forward_module(build_model(config).eval(), config)[0]
            except Exception as exc:
                say(f"PyTorch side skipped: cannot rebuild {config['architecture']}: {exc}")
        else:
            say("PyTorch side skipped: the file has no zoo metadata naming its architecture")
        return model, config, Path(source)
    model, config = load_source(source)
    from zoo.export.onnx_export import export_onnx

    say("exporting to ONNX (validated) ...")
    path = export_onnx(model, config, tmp, batch_size=2, log=None)
    return forward_module(model, config)[0], config, path


def _torch_call(model: Any, device: Any) -> Callable[[np.ndarray], Any]:
    import torch

    model = model.to(device).eval()

    def call(x: np.ndarray) -> Any:
        with torch.inference_mode():
            out = model(torch.from_numpy(x).to(device))
            if device.type == "cuda":
                torch.cuda.synchronize()
            return out

    return call


def _ort_call(session: Any) -> Callable[[np.ndarray], Any]:
    name = session.get_inputs()[0].name
    if session.get_inputs()[0].shape[0] not in (None, "batch") and isinstance(session.get_inputs()[0].shape[0], int):
        raise ExportError("this ONNX file has a fixed batch size, so it cannot be benchmarked at other batch sizes")
    return lambda x: session.run(None, {name: x})


def _interleaved(engines: dict[str, Callable[[np.ndarray], Any]], x: np.ndarray, warmup: int, runs: int) -> dict[str, list[float]]:
    for call in engines.values():
        for _ in range(warmup):
            call(x)
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(max(1, runs)):
        for name, call in engines.items():
            start = time.perf_counter()
            call(x)
            times[name].append(time.perf_counter() - start)
    return times


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
