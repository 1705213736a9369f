"""How long `zoo list` takes against `import timm; timm.list_models()`, in one run.

    python benchmarks/startup.py [--repeat 15]

Each command runs as a fresh process, alternating, and the medians are
compared. Target on a 2-core machine: `zoo list` at most 0.35 s median and at
least 4x faster than the timm line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    commands = {
        "zoo list": [shutil.which("zoo") or "zoo", "list"],
        "zoo list --all": [shutil.which("zoo") or "zoo", "list", "--all"],
        "timm.list_models()": [sys.executable, "-c", "import timm; timm.list_models()"],
    }
    for cmd in commands.values():  # warm the file cache
        wall(cmd)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, cmd in commands.items():
            times[name].append(wall(cmd))
    medians = {name: statistics.median(t) for name, t in times.items()}
    ratio = medians["timm.list_models()"] / medians["zoo list"]
    if args.json:
        print(json.dumps({"median_s": medians, "speedup": ratio, "repeat": args.repeat}, indent=2))
        return
    for name, median in medians.items():
        print(f"{name:<22} median {median * 1000:7.1f} ms  (min {min(times[name]) * 1000:.1f} ms)")
    print(f"zoo list is {ratio:.1f}x faster than importing timm and listing its models")
    ok = medians["zoo list"] <= 0.35 and ratio >= 4
    print("target (<= 0.35 s and >= 4x):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
