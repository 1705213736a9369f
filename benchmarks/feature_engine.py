"""The frozen feature pass: today's eager PyTorch against the engines zoo now picks, in one run.

For each architecture (random weights: they time the same as trained ones),
N CIFAR-10 images resized to SIZE go through the backbone's pre-logits:

* ``eager``: the pass as it was (PyTorch eager, ``no_grad``, contiguous
  layout, batches of 256): the baseline;
* ``torch``: the fallback engine (channels-last, ``inference_mode``, budget-sized batches);
* ``onnxruntime``: the exported, validated backbone on ONNX Runtime (export time reported apart).

Rounds alternate the engines so they see the same load; the median of the
rounds is reported with the ratio to eager, the largest feature difference
from eager, and ``uptime``'s load.

    python benchmarks/feature_engine.py --data ../shared/data/cifar10/train --images 512 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def subset(cifar: Path, root: Path, count: int) -> Path:
    classes = sorted(p.name for p in cifar.iterdir() if p.is_dir())
    per = -(-count // len(classes))
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per):
            os.symlink(cifar / cls / f"{i:04d}.jpg", root / cls / f"{i:04d}.jpg")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cifar10/train"))
    parser.add_argument("--archs", default="timm/efficientnet_lite0,resnet34")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    import zoo
    from zoo.data import load_image_data
    from zoo.data.budget import budget_batch_size
    from zoo.transfer import engine as eng
    from zoo.transfer.features import extract_features

    torch.set_num_threads(args.threads)
    os.environ.setdefault(eng.CACHE_ENV, tempfile.mkdtemp(prefix="feature_engine_cache_"))
    tmp = Path(tempfile.mkdtemp(prefix="feature_engine_"))
    size = (3, args.size, args.size)
    data = load_image_data(subset(args.data, tmp / "data", args.images), size, val_split=0.0, cache=True,
                           cache_budget_mb=4096)
    images = data.train.batch(0, args.images)  # at the input size (the cache keeps CIFAR at 32x32)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    report: dict[str, object] = {"images": len(images), "size": args.size, "threads": args.threads,
                                 "load_before": load_average()}
    print(f"{len(images)} images at {args.size}x{args.size}, {args.threads} threads, load {load_average()}", flush=True)
    for arch in args.archs.split(","):
        torch.manual_seed(0)
        model = zoo.create_model(arch, num_classes=10, pretrained=False).eval()
        sample = ((images[:8].float() / 255) - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
        t0 = time.perf_counter()
        ort = eng.choose_engine(model, sample, size, engine="onnxruntime", threads=args.threads)
        export_s = time.perf_counter() - t0
        batch = budget_batch_size(model, size, None, forward=eng.PreLogits(model))
        engines = {"eager": (None, 256), "torch": (eng.TorchFeatures(model), batch), "onnxruntime": (ort, batch)}
        times: dict[str, list[float]] = {k: [] for k in engines}
        outputs = {}
        for _ in range(args.rounds):
            for name, (engine, bs) in engines.items():
                start = time.perf_counter()
                if engine is None:
                    out = extract_features(model, images, mean=mean, std=std, batch_size=bs)
                else:
                    with engine:
                        out = extract_features(model, images, mean=mean, std=std, batch_size=bs, engine=engine)
                times[name].append(time.perf_counter() - start)
                outputs[name] = out
        row = {"export_and_check_s": round(export_s, 1), "budget_batch": batch}
        for name in engines:
            seconds = statistics.median(times[name])
            row[name] = {"img_s": round(len(images) / seconds, 1), "seconds": [round(t, 2) for t in times[name]],
                         "speedup_vs_eager": round(statistics.median(times["eager"]) / seconds, 2),
                         "max_abs_diff_vs_eager": float((outputs[name] - outputs["eager"]).abs().max())}
        row["load_after"] = load_average()
        report[arch] = row
        print(f"{arch}: export+check {export_s:.1f}s, budget batch {batch}; " + "; ".join(
            f"{n} {row[n]['img_s']:.1f} img/s ({row[n]['speedup_vs_eager']:.2f}x)" for n in engines)
            + f"; load {row['load_after']}", flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
