"""Frozen finetuning with and without feature caching, in one run.

10 epochs of resnet18 (frozen backbone, new linear head) on 2,000 CIFAR-10
training images (200 per class) resized to 64x64, validated on 500 others
(50 per class, images 4500-4549). The two runs differ only in
``cache_features``; the script prints wall time and final validation accuracy
of each and the speed-up.

    python benchmarks/feature_cache.py --data ../shared/data/cifar10/train [--weights FILE]

``--engines`` compares instead the two feature engines of the cached run
(ONNX Runtime and PyTorch) on the same setup: time and validation accuracy
of the finetuned head (``--arch cifar8_resnet --size 32 --train-per-class 500``
uses the shipped, trained backbone).

Without --weights (and without resnet18 weights in the torch/HF caches) the
backbone is randomly initialised: the comparison of times and accuracies is
still like for like, only the accuracy level is low.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def make_subset(cifar: Path, root: Path, train_per_class: int, val_per_class: int) -> Path:
    """Symlinked image folder with train/ and val/ parts (no copies)."""
    for cls in sorted(p.name for p in cifar.iterdir() if p.is_dir()):
        for part, start, count in (("train", 0, train_per_class), ("val", 4500, val_per_class)):
            folder = root / part / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(start, start + count):
                os.symlink(cifar / cls / f"{i:04d}.jpg", folder / f"{i:04d}.jpg")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cifar10/train"))
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--weights", help="pretrained weight file; default: the registry's (offline) or random")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engines", action="store_true", help="compare the feature engines instead")
    parser.add_argument("--train-per-class", type=int, default=200)
    args = parser.parse_args()

    import torch

    import zoo
    from zoo.data import load_image_data
    from zoo.errors import WeightsNotFoundError
    from zoo.transfer.finetune import FinetuneOptions, finetune

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="feature_cache_"))
    folder = make_subset(args.data, tmp / "data", args.train_per_class, 50)
    size = (3, args.size, args.size)
    data = load_image_data(folder, size)
    pretrained: str | bool = True
    weights = args.weights
    if weights is None:
        try:
            zoo.create_model(args.arch, pretrained=True)
            note = "pretrained weights from the local caches"
        except WeightsNotFoundError:
            # No weights on disk: a randomly initialised backbone saved as the "pretrained" file.
            from zoo.checkpoint import make_config, save_checkpoint

            torch.manual_seed(0)
            model = zoo.create_model(args.arch, num_classes=10)
            weights = str(save_checkpoint(tmp / "random_init", model, make_config(model)))
            note = "randomly initialised backbone (no resnet18 weights on disk)"
    else:
        note = f"weights from {weights}"
    results = {}
    variants = [("onnxruntime", "onnxruntime"), ("torch", "torch")] if args.engines else [
        ("cached", True), ("uncached", False)]
    for label, value in variants:
        cached = True if args.engines else value
        engine = value if args.engines else "auto"
        options = FinetuneOptions(weights=weights, pretrained=pretrained, cache_features=cached,
                                  feature_engine=engine)
        t0 = time.perf_counter()
        result = finetune(args.arch, data, options=options, epochs=args.epochs, batch_size=64, lr=1e-3,
                          optimizer="adamw", input_size=size, out=str(tmp / f"run_{cached}"), progress=False,
                          plot=False, log=lambda line: None)
        seconds = time.perf_counter() - t0
        results[label] = {"seconds": round(seconds, 1), "val_acc": round(result.final["val_acc"], 4)}
        print(f"{label:11s}  {seconds:7.1f}s  final val acc {100 * result.final['val_acc']:.2f}%", flush=True)
    (slow, _), (fast, _) = variants[1], variants[0]
    speedup = results[slow]["seconds"] / results[fast]["seconds"]
    gap = abs(results[slow]["val_acc"] - results[fast]["val_acc"]) * 100
    print(f"{args.arch}, {args.epochs} epochs, {10 * args.train_per_class} train / 500 val images at"
          f" {args.size}x{args.size}, {note}, load {os.getloadavg()}")
    print(f"speed-up {speedup:.1f}x, accuracy gap {gap:.2f} points")
    print(json.dumps({**results, "speedup": round(speedup, 2), "gap_points": round(gap, 2), "note": note}))


if __name__ == "__main__":
    main()
