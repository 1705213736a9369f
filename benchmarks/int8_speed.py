"""Static int8 against float32 in ONNX Runtime (issue 14): speed and the accuracy change.

    python benchmarks/int8_speed.py                       # resnet34 and timm/efficientnet_lite0
    python benchmarks/int8_speed.py --models resnet34 --per-class 32 --runs 10
    python benchmarks/int8_speed.py --serve deploy/model.onnx     # zoo serve: model.int8.onnx against model.onnx

Each model is built with random weights and 10 classes, exported with
``zoo export --quantize int8 --data DIR``: calibrated on ``--calibration``
CIFAR-10 images and measured on the others of DIR (disjoint by
construction, see zoo/export/quantize.py). Then float32 and int8 sessions
are timed alternately, call by call, at batch 1 and batch 32, and the
medians compared. Target: int8 >= 1.8x faster at both, at most 1 point of
accuracy lost on the held-out images. Random weights make accuracy against
CIFAR labels chance-level for both, so the top-1 agreement with float32 is
reported too; it is the stricter measure of what quantisation changed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "train"


def _data(root: Path, per_class: int) -> Path:
    """``per_class`` CIFAR-10 images of each class, linked into ``root/<class>/``."""
    for folder in sorted(p for p in CIFAR.iterdir() if p.is_dir()):
        (root / folder.name).mkdir(parents=True)
        for image in sorted(folder.glob("*.jpg"))[:per_class]:
            (root / folder.name / image.name).symlink_to(image)
    return root


def measure(name: str, data: Path, out: Path, calibration: int, threads: int, runs: int) -> dict[str, Any]:
    import torch

    import zoo
    from zoo import checkpoint
    from zoo.export.bench import _interleaved
    from zoo.export.onnx_export import export_onnx
    from zoo.runtime.model import open_session

    torch.manual_seed(0)
    model = zoo.create_model(name, num_classes=10).eval()
    classes = sorted(p.name for p in data.iterdir())
    config = checkpoint.make_config(model, class_names=classes)
    path = export_onnx(model, config, out, batch_size=2, real_images=False, data=data, quantize=["int8"],
                       quantize_options={"calibration_images": calibration, "max_accuracy_drop": 100.0})
    report = json.loads((out / "model.validation.json").read_text())["quantized"]["int8"]
    sessions = {kind: open_session(p, provider="cpu", threads=threads)
                for kind, p in (("float32", path), ("int8", path.with_name("model.int8.onnx")))}
    calls = {kind: (lambda x, s=s: s.run(None, {"input": x})) for kind, s in sessions.items()}
    c, h, w = config["input_size"]
    result: dict[str, Any] = {"model": name, "threads": threads, "quantisation": report}
    for batch, count in ((1, runs), (32, max(3, runs // 6))):
        x = np.random.default_rng(0).standard_normal((batch, c, h, w)).astype(np.float32)
        times = _interleaved(calls, x, warmup=2, runs=count)
        med = {kind: statistics.median(t) * 1000 for kind, t in times.items()}
        result[f"batch{batch}"] = {"float32_ms": round(med["float32"], 2), "int8_ms": round(med["int8"], 2),
                                   "speedup": round(med["float32"] / med["int8"], 2), "runs": count}
    return result


def served(model: Path, concurrency: int, requests: int, rounds: int, threads: int, held_out: int) -> dict[str, Any]:
    """``zoo serve model.int8.onnx`` against ``zoo serve model.onnx``, alternating, and their top-1 agreement.

    The held-out images are CIFAR-10 training images from index 1000 on in
    each class, far from the first ones that ``--data`` folders (and so the
    calibration) are built from.
    """
    import http.client
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from load_test import Server, compare

    int8 = model.with_name(model.stem + ".int8.onnx")
    images = [p for folder in sorted(q for q in CIFAR.iterdir() if q.is_dir())
              for p in sorted(folder.glob("*.jpg"))[1000 : 1000 + held_out // 10]]
    common = ["--max-batch", "32", "--max-wait-ms", "10", "--threads", str(threads), "--timeout", "120"]
    with Server(model, *common) as fp32, Server(f"model={int8}", *common) as q8:  # both named "model"
        servers = {"float32": fp32, "int8": q8}
        body = images[0].read_bytes()
        rows = compare(servers, body, concurrency, requests, rounds, 600)
        tops: dict[str, list[int]] = {}
        for label, server in servers.items():
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            tops[label] = []
            for image in images:
                conn.request("POST", "/v1/models/model/predict", body=image.read_bytes())
                tops[label].append(json.loads(conn.getresponse().read())["top"][0]["index"])
    agree = sum(a == b for a, b in zip(tops["float32"], tops["int8"])) / len(images)
    public = {k: {key: v for key, v in row.items() if not key.startswith("_")} for k, row in rows.items()}
    return {"served": public, "concurrency": concurrency,
            "int8_over_float32_throughput": round(rows["int8"]["throughput_rps"] / max(rows["float32"]["throughput_rps"], 1e-9), 2),
            "top1_agreement": round(agree, 4), "held_out_images": len(images), "load": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet34", "timm/efficientnet_lite0"])
    parser.add_argument("--per-class", type=int, default=64, help="CIFAR-10 images per class in DIR")
    parser.add_argument("--calibration", type=int, default=128, help="of them, used to calibrate")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--runs", type=int, default=20, help="timed batch-1 runs per engine")
    parser.add_argument("--serve", metavar="MODEL.onnx",
                        help="measure zoo serve: this float model against its MODEL.int8.onnx sibling, then stop")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=256, help="requests per server (--serve)")
    parser.add_argument("--rounds", type=int, default=4, help="alternations of the two servers (--serve)")
    parser.add_argument("--held-out", type=int, default=300, help="images for the top-1 agreement (--serve)")
    args = parser.parse_args()
    print(f"load: {os.getloadavg()}", flush=True)
    if args.serve:
        print(json.dumps(served(Path(args.serve), args.concurrency, args.requests, args.rounds, args.threads,
                                args.held_out)), flush=True)
        print(f"load: {os.getloadavg()}", flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = _data(Path(tmp) / "data", args.per_class)
        for name in args.models:
            out = Path(tmp) / name.replace("/", "_")
            print(json.dumps(measure(name, data, out, args.calibration, args.threads, args.runs), indent=1), flush=True)
    print(f"load: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
