"""Deployment speed figures (issue 6): not a test, a script that prints measurements.

    python benchmarks/deploy_speed.py all            # everything below
    python benchmarks/deploy_speed.py onnx-speed     # resnet34 at 224, batch 1: ONNX Runtime vs PyTorch eager
    python benchmarks/deploy_speed.py predict-overhead --images DIR
    python benchmarks/deploy_speed.py runtime-import

Each figure is measured against its baseline in the same run, alternating
the two call by call, repeated, and reported as medians, because the machine
may be shared with other work. Targets: ONNX Runtime >= 1.6x faster than
eager PyTorch at batch 1; ``zoo predict`` over a folder of 100 images at most
20% slower per image than a bare ``InferenceSession.run`` on arrays that are
already preprocessed; ``import zoo.runtime`` within 0.3 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "train"


def _export(model: Any, out: Path) -> Path:
    """The model as validated ONNX (fixed validation cost: random inputs, batch 1 and 2)."""
    from zoo import checkpoint
    from zoo.export.onnx_export import export_onnx

    return export_onnx(model, checkpoint.make_config(model), out, batch_size=2, real_images=False)


def onnx_speed(name: str, threads: int, runs: int, repeats: int) -> dict[str, Any]:
    """Batch-1 latency of PyTorch eager (no_grad and inference_mode) against ONNX Runtime at each optimisation level."""
    import onnxruntime as ort
    import torch

    import zoo
    from zoo.export.bench import _interleaved

    torch.set_num_threads(threads)
    model = zoo.create_model(name).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = _export(model, Path(tmp))
        sessions = {}
        for label, level in (("basic", ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
                             ("extended", ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED),
                             ("all", ort.GraphOptimizationLevel.ORT_ENABLE_ALL)):
            options = ort.SessionOptions()
            options.graph_optimization_level = level
            options.intra_op_num_threads = threads
            # idle ORT threads would otherwise busy-wait through PyTorch's turn
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            sessions[label] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        c, h, w = zoo.get_spec(name).input_size
        x = np.random.default_rng(0).standard_normal((1, c, h, w)).astype(np.float32)
        xt = torch.from_numpy(x)

        def eager_no_grad(_: np.ndarray) -> Any:
            with torch.no_grad():
                return model(xt)

        def eager_inference(_: np.ndarray) -> Any:
            with torch.inference_mode():
                return model(xt)

        engines = {"torch no_grad": eager_no_grad, "torch inference_mode": eager_inference}
        engines.update({f"ort {k}": (lambda s: (lambda arr: s.run(None, {"input": arr})))(s) for k, s in sessions.items()})
        medians: dict[str, list[float]] = {k: [] for k in engines}
        for _ in range(repeats):
            times = _interleaved(engines, x, warmup=3, runs=runs)
            for k, v in times.items():
                medians[k].append(1000 * statistics.median(v))
    result = {k: statistics.median(v) for k, v in medians.items()}
    best_torch = min(result["torch no_grad"], result["torch inference_mode"])
    return {
        "model": name,
        "threads": threads,
        "latency_ms_median": result,
        "speedup_ort_all_vs_best_torch": best_torch / result["ort all"],
        "speedup_per_repeat": [min(a, b) / c for a, b, c in zip(medians["torch no_grad"], medians["torch inference_mode"], medians["ort all"])],
    }


def _folder(images: Path | None, count: int, tmp: Path) -> Path:
    """``count`` images: from ``images`` (CIFAR-10 JPEGs when present) or generated JPEGs."""
    from PIL import Image

    out = tmp / "folder"
    out.mkdir()
    source = images if images is not None else (CIFAR if CIFAR.is_dir() else None)
    if source is not None:
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        step = max(1, len(files) // count)
        for i, f in enumerate(files[::step][:count]):
            (out / f"{i:04d}{f.suffix}").write_bytes(f.read_bytes())
    else:
        rng = np.random.default_rng(0)
        for i in range(count):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(out / f"{i:04d}.jpg")
    return out


def predict_overhead(name: str, images: Path | None, count: int, threads: int, repeats: int) -> dict[str, Any]:
    """Per-image time of runtime.predict(folder) against session.run on preprocessed arrays, same session."""
    import zoo
    from zoo import runtime

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        path = _export(zoo.create_model(name).eval(), tmp_path)
        folder = _folder(images, count, tmp_path)
        model = runtime.load(path, provider="cpu", threads=threads)
        paths = runtime.list_images([folder])
        arrays = model.preprocessing.load_batch(paths)
        session = model.session

        def bare() -> None:
            for i in range(0, len(arrays), 32):
                session.run(None, {"input": arrays[i : i + 32]})

        def zoo_predict() -> None:
            model.prefetch = False  # the default on CPU
            model.predict([folder], top_k=5, batch_size=32)

        def zoo_predict_prefetch() -> None:
            model.prefetch = True  # the default on GPU: decoding overlaps the model's run
            model.predict([folder], top_k=5, batch_size=32)

        calls = {"bare session.run": bare, "zoo predict (in-process)": zoo_predict,
                 "zoo predict, decoding in a helper thread": zoo_predict_prefetch}
        for call in calls.values():
            call()  # warm-up
        per_image: dict[str, list[float]] = {label: [] for label in calls}
        for _ in range(repeats):
            for label, call in calls.items():
                start = time.perf_counter()
                call()
                per_image[label].append(1000 * (time.perf_counter() - start) / len(paths))
        cli = []
        for _ in range(max(1, repeats // 2)):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "zoo", "predict", str(path), str(folder), "--json", "--threads", str(threads)],
                           check=True, capture_output=True)
            cli.append(1000 * (time.perf_counter() - start) / len(paths))
    med = {k: statistics.median(v) for k, v in per_image.items()}
    return {
        "model": name,
        "images": len(paths),
        "ms_per_image_median": med,
        "overhead": med["zoo predict (in-process)"] / med["bare session.run"] - 1,
        "overhead_per_repeat": [z / b - 1 for b, z in zip(per_image["bare session.run"], per_image["zoo predict (in-process)"])],
        "overhead_with_helper_thread": med["zoo predict, decoding in a helper thread"] / med["bare session.run"] - 1,
        "cli_subprocess_ms_per_image_median": statistics.median(cli),
    }


def runtime_import(repeats: int) -> dict[str, Any]:
    """Wall time of fresh interpreters importing the runtime, against an empty interpreter."""
    lines = {
        "python -c pass": "pass",
        "import zoo.runtime": "import zoo.runtime",
        "import zoo.runtime + onnxruntime": "import zoo.runtime, onnxruntime",
    }
    times: dict[str, list[float]] = {k: [] for k in lines}
    for _ in range(repeats):
        for label, code in lines.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times[label].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    # CPU seconds of the import itself, measured inside the process: on a
    # machine shared with busy neighbours this is what an idle machine's wall time would be.
    probe = (
        "import time; c=time.process_time(); w=time.perf_counter(); import zoo.runtime; "
        "a=(time.process_time()-c, time.perf_counter()-w); import onnxruntime; "
        "print(a[0], a[1], time.process_time()-c, time.perf_counter()-w)"
    )
    inside = [
        [float(v) for v in subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()]
        for _ in range(repeats)
    ]
    columns = ["zoo.runtime cpu", "zoo.runtime wall", "+onnxruntime cpu", "+onnxruntime wall"]
    return {
        "seconds_median": med,
        "net_seconds": {k: v - med["python -c pass"] for k, v in med.items() if k != "python -c pass"},
        "in_process_seconds_median": {name: statistics.median(row[i] for row in inside) for i, name in enumerate(columns)},
        "torch_imported": _torch_imported(),
    }


def _torch_imported() -> bool:
    code = "import sys, zoo.runtime; print('torch' in sys.modules)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["all", "onnx-speed", "predict-overhead", "runtime-import"])
    parser.add_argument("--model", default="resnet34")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=Path, help="folder to take images from (default: CIFAR-10 in ../shared, else generated)")
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if args.what in ("all", "runtime-import"):
        results["runtime_import"] = runtime_import(max(args.repeats, 7))
        print(json.dumps(results["runtime_import"], indent=2), flush=True)
    if args.what in ("all", "onnx-speed"):
        results["onnx_speed"] = onnx_speed(args.model, args.threads, args.runs, args.repeats)
        print(json.dumps(results["onnx_speed"], indent=2), flush=True)
    if args.what in ("all", "predict-overhead"):
        results["predict_overhead"] = predict_overhead(args.model, args.images, args.count, args.threads, args.repeats)
        print(json.dumps(results["predict_overhead"], indent=2), flush=True)


if __name__ == "__main__":
    main()
