"""The I2DL exercise-7 leaderboard with zoo: a fully connected net on all ten CIFAR-10 classes.

    python benchmarks/i2dl_mlp.py --recipes exercise,wide_bn_aug --out runs/i2dl_mlp
    python benchmarks/i2dl_mlp.py --report-test runs/i2dl_mlp   # once, on the held-out part

From ../shared/data/cifar10/train, per class: images 0-3999 train, 4000-4499
validate (recipe choice, best epoch), 4500-4999 are a held-out test part
that no recipe sees until the chosen one is scored once with --report-test.
Every recipe is a literal `zoo train` command line (printed and stored), so
the result can be reproduced by pasting it. Published: leaderboard top
64.30%, sample solutions 59.87% and 56.85% (CIFAR-10 test split).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# The exercise's two-layer net (Linear, ReLU, Linear) and deeper/wider members of
# the family with the options the sample solutions used: batch norm, dropout,
# Adam, weight decay, learning-rate decay, flips and small shifts.
RECIPES: dict[str, list[str]] = {
    "exercise": [
        "--model-arg", "hidden_size=100", "--optimizer", "sgd", "--lr", "0.01", "--momentum", "0.9",
        "--epochs", "20", "--batch-size", "128",
    ],
    "wide_bn": [
        "--model-arg", "hidden_size=1024", "--model-arg", "num_layers=3", "--model-arg", "batchnorm=True",
        "--model-arg", "drop_rate=0.3", "--optimizer", "adamw", "--lr", "0.001", "--weight-decay", "0.05",
        "--scheduler", "cosine", "--epochs", "30", "--batch-size", "256", "--label-smoothing", "0.1",
    ],
    "wide_bn_aug": [
        "--model-arg", "hidden_size=1024", "--model-arg", "num_layers=3", "--model-arg", "batchnorm=True",
        "--model-arg", "drop_rate=0.3", "--optimizer", "adamw", "--lr", "0.001", "--weight-decay", "0.05",
        "--scheduler", "cosine", "--epochs", "40", "--batch-size", "256", "--label-smoothing", "0.1",
        "--augment", "crop=2,flip",
    ],
}


def make_split(source: Path, dest: Path) -> Path:
    """train/ (0-3999), val/ (4000-4499) and test/ (4500-4999) of every class, as symbolic links."""
    for cls in CLASSES:
        files = sorted((source / cls).glob("*.jpg"))
        parts = {"train": files[:4000], "val": files[4000:4500], "test": files[4500:5000]}
        for part, chosen in parts.items():
            folder = dest / part / cls
            folder.mkdir(parents=True, exist_ok=True)
            for f in chosen:
                link = folder / f.name
                if not link.exists():
                    os.symlink(f.resolve(), link)
    return dest


def run_recipe(name: str, data: Path, out: Path, threads: int | None) -> dict:
    run_dir = out / name
    cmd = ["zoo", "train", "i2dl_mlp", "--data", str(data), "--out", str(run_dir), "--quiet", "--json", *RECIPES[name]]
    if threads:
        cmd += ["--threads", str(threads)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed: {proc.stderr.strip()}")
    result = json.loads(proc.stdout)
    return {
        "recipe": name,
        "command": shlex.join(cmd),
        "val_acc": result["best"].get("val_acc"),
        "best_epoch": result.get("best_epoch"),
        "wall_s": time.perf_counter() - start,
        "checkpoint": result["best_path"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/cifar10/train"))
    parser.add_argument("--out", default="runs/i2dl_mlp")
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--report-test", action="store_true", help="score the best recipe (by val) on the test part")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    split = make_split(Path(args.data_root), out / "data")
    trainval = out / "trainval"
    for part in ("train", "val"):  # the training folder must not contain test/
        link = trainval / part
        trainval.mkdir(exist_ok=True)
        if not link.exists():
            os.symlink((split / part).resolve(), link)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else []

    if args.report_test:
        best = max(results, key=lambda r: r["val_acc"])
        test_dir = out / "testonly"
        test_dir.mkdir(exist_ok=True)
        if not (test_dir / "val").exists():
            os.symlink((split / "test").resolve(), test_dir / "val")
        proc = subprocess.run(["zoo", "evaluate", best["checkpoint"], "--data", str(test_dir), "--json"],
                              capture_output=True, text=True, check=True)
        best["test_acc"] = json.loads(proc.stdout)["accuracy"]
        print(json.dumps(best, indent=2))
    else:
        for name in args.recipes.split(","):
            row = run_recipe(name, trainval, out, args.threads)
            results = [r for r in results if r["recipe"] != name] + [row]
            print(f"{name:<12} val {row['val_acc']:.4f} (epoch {row['best_epoch']}) {row['wall_s'] / 60:.1f} min", flush=True)
            print(f"  {row['command']}", flush=True)
            from zoo.io import write_json

            write_json(results_path, results)
        return
    from zoo.io import write_json

    write_json(results_path, results)


if __name__ == "__main__":
    sys.exit(main())
