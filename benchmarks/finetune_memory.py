"""Peak memory and feature-pass time of ``zoo finetune`` as the folder grows, each run a child process.

A randomly initialised backbone (the timing and memory of trained weights are
the same) is saved as a checkpoint and finetuned with the defaults (frozen
backbone, cached features, the feature engine zoo picks) on the first N
CIFAR-10 images of each class; the peak RSS of each child (``wait4``) and the
feature-pass lines it printed are reported. ``--stream N`` adds a run over N
images with a cache budget far below their size, so they stream from disk.

    python benchmarks/finetune_memory.py --arch timm/efficientnet_lite0 --size 224 --counts 1000,10000
    python benchmarks/finetune_memory.py --arch cifar8_resnet --size 32 --counts 1000 --stream 50000
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


def subset(cifar: Path, root: Path, count: int) -> Path:
    classes = sorted(p.name for p in cifar.iterdir() if p.is_dir())
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(min(5000, -(-count // len(classes)))):
            os.symlink(cifar / cls / f"{i:04d}.jpg", root / cls / f"{i:04d}.jpg")
    return root


def run(cmd: list[str]) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    lines = [l for l in out.splitlines() if l.startswith(("feature pass", "zoo: ", "Error"))]
    return {"exit": os.waitstatus_to_exitcode(status), "wall_s": round(time.perf_counter() - start, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "lines": lines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/cifar10/train")
    parser.add_argument("--arch", default="timm/efficientnet_lite0")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--counts", default="1000,10000")
    parser.add_argument("--stream", type=int, default=0, help="also stream this many images past a tiny cache")
    parser.add_argument("--extra", default="", help="more zoo finetune options, space-separated")
    args = parser.parse_args()
    args.data = args.data.resolve()  # the folders hold symbolic links to it: relative ones would dangle

    import torch

    import zoo
    from zoo.checkpoint import make_config, save_checkpoint

    tmp = Path(tempfile.mkdtemp(prefix="finetune_memory_"))
    torch.manual_seed(0)
    model = zoo.create_model(args.arch, num_classes=10, pretrained=False)
    config = make_config(model)
    config["input_size"] = [3, args.size, args.size]
    ckpt = save_checkpoint(tmp / "random_init", model, config)
    report = {"arch": args.arch, "size": args.size, "load_before": os.getloadavg()}
    jobs = [(int(n), []) for n in args.counts.split(",") if n] + ([(args.stream, ["--cache-mb", "16"])] if args.stream else [])
    for count, extra in jobs:
        folder = subset(args.data, tmp / f"data{count}{'s' if extra else ''}", count)
        cmd = [sys.executable, "-m", "zoo", "finetune", str(ckpt), "--data", str(folder), "--epochs", "2",
               "--out", str(tmp / f"run{count}"), "--no-plot", "--metrics-format", "none", *extra,
               *args.extra.split()]
        row = run(cmd)
        row["load_after"] = os.getloadavg()
        report[f"{count}{' streamed' if extra else ''}"] = row
        print(f"{count} images{' (streamed)' if extra else ''}: exit {row['exit']}, {row['wall_s']} s,"
              f" peak RSS {row['peak_rss_mb']} MB; " + " | ".join(row["lines"]) + f"; load {row['load_after']}",
              flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
