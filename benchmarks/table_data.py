"""Labels from a table, measured on CIFAR-10: a CSV trains like class folders; multi-label tags learn.

1. **Table = folders.** 1,000 cats and 1,000 dogs (images 0-999), once as
   class folders (symlinks) and once as a CSV of absolute paths; ``net``
   trains 3 epochs on each with the same seed and --val-split 0.2. The script
   prints both validation accuracies and whether the final weights are equal.
2. **Multi-label.** Six classes tagged with species and group ("cat animal",
   "airplane vehicle"): airplane, automobile, ship (vehicle), cat, dog,
   horse (animal); --train-per-class (300) training images per class and 100 held-out
   (4500-4599) marked in ``is_valid``. ``zoo finetune cifar8_resnet
   --multi-label`` (the shipped backbone, frozen; a new linear head on cached
   features) for --epochs (5) at --lr (3e-3, AdamW); prints the held-out mAP, F1 and exact match, and
   how often the ONNX export in the runtime and ``zoo serve`` give the
   checkpoint's labels.

    python benchmarks/table_data.py --data ../shared/data/cifar10/train
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

GROUPS = {"airplane": "vehicle", "automobile": "vehicle", "ship": "vehicle",
          "cat": "animal", "dog": "animal", "horse": "animal"}


def table_equals_folders(cifar: Path, work: Path) -> dict:
    import torch
    from safetensors.torch import load_file

    from zoo.train import fit

    rows = []
    for cls in ("cat", "dog"):
        (work / "folders" / cls).mkdir(parents=True)
        for i in range(1000):
            src = cifar / cls / f"{i:04d}.jpg"
            os.symlink(src, work / "folders" / cls / src.name)
            rows.append((str(src), cls))
    with open(work / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label"])
        writer.writerows(reversed(rows))
    opts = dict(epochs=3, batch_size=64, lr=0.01, seed=0, val_split=0.2, progress=False, plot=False)
    out = {}
    for name, data in (("folders", work / "folders"), ("table", work / "labels.csv")):
        start = time.perf_counter()
        result = fit("net", str(data), out=work / f"run_{name}", **opts)
        out[name] = {"val_acc": result.history[-1]["val_acc"], "seconds": round(time.perf_counter() - start, 1)}
    a, b = (load_file(str(work / f"run_{n}" / "last" / "model.safetensors")) for n in ("folders", "table"))
    out["same_weights"] = all(torch.equal(a[k], b[k]) for k in a)
    return out


def multi_label(cifar: Path, work: Path, epochs: int = 5, lr: float = 3e-3, per_class: int = 300) -> dict:
    import numpy as np

    from zoo.export import export
    from zoo.export.predict import TorchModel
    from zoo.runtime import load
    from zoo.train import TrainConfig, evaluate
    from zoo.transfer.finetune import FinetuneOptions, finetune

    held_out = []
    with open(work / "tags.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "tags", "is_valid"])
        for cls, group in GROUPS.items():
            for i in list(range(per_class)) + list(range(4500, 4600)):
                path = cifar / cls / f"{i:04d}.jpg"
                writer.writerow([str(path), f"{cls} {group}", int(i >= 4500)])
                if i >= 4500:
                    held_out.append(path)
    cfg = TrainConfig(epochs=epochs, lr=lr, optimizer="adamw", normalize="model", multi_label=True, seed=0,
                      progress=False, plot=False, out=str(work / "ml"))
    start = time.perf_counter()
    result = finetune("cifar8_resnet", str(work / "tags.csv"), cfg, FinetuneOptions())
    seconds = time.perf_counter() - start
    scored = evaluate(result.best_path, str(work / "tags.csv"))
    onnx = export(result.best_path, ["onnx"], work / "export")["onnx"]
    by_torch = TorchModel(result.best_path).predict(held_out)
    by_onnx = load(onnx, provider="cpu").predict(held_out)
    served = _serve_labels(onnx, held_out[::10])
    return {
        "seconds": round(seconds, 1), "held_out_images": scored.num_images, "mean_ap": round(scored.mean_ap, 4),
        "f1": round(scored.f1, 4), "exact_match": round(scored.accuracy, 4),
        "onnx_same_labels": float(np.mean([a.labels == b.labels for a, b in zip(by_torch, by_onnx)])),
        "serve_same_labels": float(np.mean([s == b.labels for s, b in zip(served, by_onnx[::10])])),
    }


def _serve_labels(onnx: Path, images: list[Path]) -> list[list[str]]:
    from starlette.testclient import TestClient

    from zoo.runtime.serve import ServeConfig, load_models
    from zoo.runtime.serve.app import Server

    with TestClient(Server(load_models([str(onnx)], provider="cpu"), ServeConfig()).app()) as client:
        return [[x["label"] for x in client.post("/v1/models/model/predict", content=p.read_bytes()).json()["labels"]]
                for p in images]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="CIFAR-10 train folder (class sub-folders)")
    parser.add_argument("--epochs", type=int, default=5, help="multi-label finetuning epochs")
    parser.add_argument("--lr", type=float, default=3e-3, help="multi-label finetuning learning rate")
    parser.add_argument("--train-per-class", type=int, default=300, help="multi-label training images per class")
    parser.add_argument("--only", choices=["table", "multi-label"], help="run one of the two parts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report = {"load_before": os.getloadavg()[0]}
        if args.only != "multi-label":
            report["table_equals_folders"] = table_equals_folders(args.data, work)
        if args.only != "table":
            report["multi_label"] = multi_label(args.data, work, args.epochs, args.lr, args.train_per_class)
            report["multi_label"].update(epochs=args.epochs, lr=args.lr, train_per_class=args.train_per_class)
        report["load_after"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
