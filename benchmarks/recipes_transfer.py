"""``zoo finetune --recipe auto`` against the frozen head, and TTA, on CIFAR-10 cats and dogs no run tuned on.

Images of ../shared/data/cifar10/train/{cat,dog}, split by index before any run:

* ``tune``:    1000-1799 train, 1800-1999 val: the only images the second stage's defaults were chosen on
               (``--stage tune --ft-lr A,B,...``);
* ``main``:    0000-0999 of each class (2,000 images; zoo's 10% validation split of them);
* ``cats``:    demo:cats (400 images, 4000-4199 train, 4200-4299 val);
* ``heldout``: 2000-2999 of each class (2,000 images), scored once per finished run, never tuned on.

    python benchmarks/recipes_transfer.py --stage tune --ft-lr 3e-4,1e-3
    python benchmarks/recipes_transfer.py --stage main [--model efficientnet_lite2 --size 224]
    python benchmarks/recipes_transfer.py --stage cats

Each run is a ``zoo finetune --recipe auto`` command line (its probe is the frozen head, saved as
OUT/probe/best, so one run gives both); each kept checkpoint and the probe are then scored on the
held-out images with and without ``--tta flip``. Prints one JSON line per run with wall and CPU
seconds and the 1-minute load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from cifar_folders import children_cpu, link_folder

SPLITS = {"tune_train": range(1000, 1800), "tune_val": range(1800, 2000), "main": range(0, 1000),
          "heldout": range(2000, 3000)}


def zoo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True)


def score(checkpoint: Path, heldout: Path, tta: bool = True) -> dict:
    """Held-out accuracy without and (``tta``) with flip TTA."""
    out = {}
    for label, extra in (("heldout_acc", []), ("heldout_acc_tta_flip", ["--tta", "flip"]))[:2 if tta else 1]:
        run = zoo("evaluate", str(checkpoint), "--data", str(heldout), "--json", *extra)
        out[label] = json.loads(run.stdout)["accuracy"] if run.returncode == 0 else run.stderr.strip()[-200:]
    return out


def run_recipe(name: str, data: str, out: Path, heldout: Path, args, extra: list[str]) -> dict:
    cmd = ["finetune", args.model, "--data", data, "--input-size", f"3x{args.size}x{args.size}", "--recipe", "auto",
           "--budget", str(args.budget), "--threads", str(args.threads), "--out", str(out), "--json", "-q", *extra]
    load_before = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), children_cpu()
    run = zoo(*cmd)
    seconds, cpu_seconds = time.perf_counter() - started, children_cpu() - cpu_started
    row = {"run": name, "command": "zoo " + " ".join(cmd), "seconds": round(seconds, 1),
           "cpu_seconds": round(cpu_seconds, 1), "load_before": load_before, "load_after": os.getloadavg()[0]}
    if run.returncode != 0:
        return {**row, "error": run.stderr.strip()[-600:]}
    recipe = json.loads(run.stdout)["recipe"]
    row["recipe"] = {"kept": recipe["kept"], "reason": recipe["reason"],
                     "attempts": [{k: a[k] for k in ("name", "val_acc", "seconds", "note")} for a in recipe["attempts"]]}
    if heldout is not None:
        row["frozen_head"] = score(out / "probe" / "best", heldout, args.tta)
        if recipe["kept"] == "lp-ft":
            row["kept"] = score(out / "best", heldout, args.tta)
        elif recipe["attempts"][-1]["val_acc"] is not None and (out / "last").exists():
            # the kept model is the frozen head (OUT/best is its copy); the second stage's last epoch, for the record
            row["lp_ft_last"] = score(out / "last", heldout, args.tta)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=["tune", "main", "cats"], default="main")
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--budget", type=float, default=10.0, help="minutes for the whole auto run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ft-lr", default="", help="the second stage's lr (tune: comma-separated, one run each)")
    parser.add_argument("--epochs", type=int, help="the second stage's epochs [zoo's default]")
    parser.add_argument("--work", default="runs/recipes_transfer")
    parser.add_argument("--no-tta", dest="tta", action="store_false", help="score without TTA only")
    args = parser.parse_args()
    shared, work = Path(args.shared), Path(args.work)
    heldout = link_folder(shared, work / "heldout", SPLITS["heldout"])
    if args.stage == "tune":
        tune = work / "tune"
        link_folder(shared, tune / "train", SPLITS["tune_train"])
        link_folder(shared, tune / "val", SPLITS["tune_val"])
        for lr in args.ft_lr.split(","):
            out = work / f"tune_{args.model}_lr{lr}"
            extra = ["--lr", lr] + (["--epochs", str(args.epochs)] if args.epochs else [])
            print(json.dumps(run_recipe(f"tune lr {lr}", str(tune), out, None, args, extra)), flush=True)
        return
    data = "demo:cats" if args.stage == "cats" else str(link_folder(shared, work / "main", SPLITS["main"]))
    out = work / f"{args.stage}_{args.model}_{args.size}"
    extra = (["--lr", args.ft_lr] if args.ft_lr else []) + (["--epochs", str(args.epochs)] if args.epochs else [])
    print(json.dumps(run_recipe(args.stage, data, out, heldout, args, extra)), flush=True)


if __name__ == "__main__":
    main()
