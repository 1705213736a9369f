"""The README's main job and zoo's fine-tuning recipe, scored on cat/dog images neither saw.

Trains on demo:cats (CIFAR-10 cat/dog images 4000-4199; 4200-4299 are its
val/) and scores each run's best checkpoint on a fixed held-out set: images
4500-4999 of cat and dog from ../shared/data/cifar10/train (1,000 images),
chosen before any tuning. Recipes were tuned on images 3800-3999 only.

    python benchmarks/imagenet_transfer.py [--runs main,recipe,cifar8] [--shared ../shared]

Each run is a ``zoo`` command line, timed from start to exit (model build,
weight loading, image decoding and the first feature pass included). Prints
one JSON line per run: wall and CPU seconds, the 1-minute load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cifar_folders import children_cpu, link_folder

RUNS = {
    # The README's main command.
    "main": ["finetune", "efficientnet_lite0", "--data", "demo:cats", "--input-size", "3x160x160"],
    # docs/transfer.md: the fine-tuning recipe.
    "recipe": ["finetune", "efficientnet_lite0", "--data", "demo:cats", "--input-size", "3x160x160",
               "--unfreeze-after", "1", "--unfreeze-every", "1", "--layer-decay", "0.6", "--epochs", "4",
               "--lr", "2e-3", "--scheduler", "onecycle", "--augment", "flip,crop=12", "--batch-size", "32",
               "--weight-decay", "0.01"],
    # The shipped torch-only backbone, for reference.
    "cifar8": ["finetune", "cifar8_resnet", "--data", "demo:cats"],
}
HELDOUT = range(4500, 5000)


def heldout_folder(shared: Path, out: Path) -> Path:
    """Symlinks to the held-out images in an image folder (cat/, dog/)."""
    return link_folder(shared, out, HELDOUT)


def zoo_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="main,recipe,cifar8")
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="imagenet_transfer_"))
    heldout = heldout_folder(Path(args.shared), tmp / "heldout")
    for name in args.runs.split(","):
        out = tmp / name
        load_before = os.getloadavg()[0]
        started, cpu_started = time.perf_counter(), children_cpu()
        run = zoo_command(*RUNS[name], "--out", str(out), "--json", "-q")
        seconds, cpu_seconds = time.perf_counter() - started, children_cpu() - cpu_started
        if run.returncode != 0:
            print(json.dumps({"run": name, "error": run.stderr.strip()[-400:]}))
            continue
        result = json.loads(run.stdout)
        scored = zoo_command("evaluate", str(out / "best"), "--data", str(heldout), "--json")
        metrics = json.loads(scored.stdout) if scored.returncode == 0 else {"error": scored.stderr[-300:]}
        print(json.dumps({
            "run": name, "command": "zoo " + " ".join(RUNS[name]), "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu_seconds, 1), "val_acc": result.get("best_val_acc", result.get("best", {}).get("val_acc")),
            "heldout_acc": metrics.get("accuracy"), "heldout_images": metrics.get("num_images"),
            "load_before": load_before, "load_after": os.getloadavg()[0],
        }), flush=True)


if __name__ == "__main__":
    main()
