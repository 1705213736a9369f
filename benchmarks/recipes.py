"""Run the course exercises of docs/recipes.md as zoo commands and collect their figures.

    python benchmarks/recipes.py --epochs 30 --out runs/recipes

Uses the CIFAR-2 split that benchmarks/book_cifar2.py links (airplane and
bird, images 0-3999 train, 4000-4999 validation), and for the confident
mistakes the last 1,000 cat images, a class the model never saw.
Writes OUT/recipes.json; every entry carries the exact command that ran.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import time
from pathlib import Path

BOOK = ["--optimizer", "sgd", "--momentum", "0", "--lr", "0.01", "--batch-size", "64",
        "--mean", "0.4915,0.4823,0.4468", "--std", "0.2470,0.2435,0.2616", "--quiet", "--json"]

# experiment -> list of (label, model, extra options)
EXPERIMENTS = {
    "kernel": [("3x3", "net", []), ("5x5", "net", ["--model-arg", "kernel_size=5"])],
    "loss": [("ce", "net", ["--loss", "ce"]), ("nll", "net", ["--loss", "nll"]), ("mse", "net", ["--loss", "mse"])],
    "shrink": [("16 channels", "net", []), ("8 channels", "net", ["--model-arg", "n_chans1=8"]),
               ("4 channels", "net", ["--model-arg", "n_chans1=4"])],
}


def run(cmd: list[str]) -> dict:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {shlex.join(cmd)}\n{proc.stderr}")
    out = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    out["wall_s"] = time.perf_counter() - start
    out["command"] = shlex.join(cmd)
    return out


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="runs/book_cifar2/data_4000_1000", help="the CIFAR-2 split (train/ and val/)")
    parser.add_argument("--cats", default=str(root.parent / "shared/data/cifar10/train/cat"))
    parser.add_argument("--baseline", default="runs/book_cifar2/baseline/last", help="checkpoint for confident mistakes")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--only", default=",".join([*EXPERIMENTS, "confident"]))
    parser.add_argument("--out", default="runs/recipes")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "recipes.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    threads = ["--threads", str(args.threads)] if args.threads else []
    from zoo.io import write_json

    for name in args.only.split(","):
        if name == "confident":
            cats = out / "cats" / "cat"
            cats.mkdir(parents=True, exist_ok=True)
            for f in sorted(Path(args.cats).glob("*.jpg"))[-1000:]:
                if not (cats / f.name).exists():
                    os.symlink(f.resolve(), cats / f.name)
            cmd = ["zoo", "mistakes", args.baseline, "--data", str(out / "cats"), "--min-prob", "0.95",
                   "--sheet", str(root / "docs" / "confident_cats.png"), "--json"]
            report = run(cmd)
            results["confident"] = {k: report[k] for k in ("num_images", "num_confident_mistakes", "rate", "command")}
            results["confident"]["predicted"] = {
                c: sum(1 for m in report["mistakes"] if m["predicted"] == c) for c in ("airplane", "bird")
            }
        else:
            rows = []
            for label, model, extra in EXPERIMENTS[name]:
                run_out = out / name / label.replace(" ", "_")
                cmd = ["zoo", "train", model, "--data", args.data, "--out", str(run_out), "--epochs", str(args.epochs),
                       *BOOK, *extra, *threads]
                summary = run(cmd)
                last = summary["last"]
                info = ["zoo", "info", model, *_model_args(extra), "--json"]
                params = json.loads(subprocess.run(info, capture_output=True, text=True, check=True).stdout)["params"]
                rows.append({"label": label, "params": params, "train_acc": last.get("train_acc"),
                             "val_acc": last.get("val_acc"), "gap": last.get("train_acc", 0) - last.get("val_acc", 0),
                             "epochs": args.epochs, "command": summary["command"], "wall_s": summary["wall_s"]})
                print(f"{name:<8} {label:<12} params {params:>7,} train {rows[-1]['train_acc']:.3f}"
                      f" val {rows[-1]['val_acc']:.3f}", flush=True)
            results[name] = rows
        write_json(results_path, results)


def _model_args(extra: list[str]) -> list[str]:
    """The --model-arg pairs of a training command, for zoo info."""
    return [item for i, a in enumerate(extra) if a == "--model-arg" for item in (a, extra[i + 1])]


if __name__ == "__main__":
    main()
