"""``zoo compare`` over EfficientNet-Lite0/1/2 and cifar8_resnet on 2,000 CIFAR-10 cat and dog images.

    python benchmarks/compare_backbones.py [--input-size 3x160x160] [--shared ../shared]

The data are images 0000-0999 of cat and dog (the same folder as benchmarks/recipes_transfer.py's
``main``), or ``--data``. One ``zoo compare`` command line, timed from start to exit; prints its JSON report with
the wall and CPU seconds and the 1-minute load average before and after.
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

MODELS = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "cifar8_resnet"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    parser.add_argument("--input-size", help="one size for all (each model's own without it)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default="runs/recipes_transfer")
    parser.add_argument("--data", help="another image folder or SCHEME:NAME (e.g. demo:cats) instead of the 2,000 images")
    args = parser.parse_args()
    data = args.data or link_folder(Path(args.shared), Path(args.work) / "main", range(0, 1000))
    cmd = [sys.executable, "-m", "zoo", "compare", "--data", str(data), *MODELS, "--threads", str(args.threads),
           "--out", str(Path(args.work) / "compare"), "--json"]
    if args.input_size:
        cmd += ["--input-size", args.input_size]
    load_before = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), children_cpu()
    run = subprocess.run(cmd, capture_output=True, text=True)
    report = json.loads(run.stdout) if run.returncode == 0 else {"error": run.stderr.strip()[-600:]}
    report.update(command=" ".join(cmd[2:]), seconds=round(time.perf_counter() - started, 1),
                  cpu_seconds=round(children_cpu() - cpu_started, 1), load_before=load_before,
                  load_after=os.getloadavg()[0])
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
