"""What --accumulate, --ema, --mixup/--cutmix, the augment policies and --lr auto cost per epoch (not a test).

One process, one data set decoded once, ``net`` trained for ``--epochs``
epochs with each variant in turn, and the variants alternated for
``--rounds`` rounds so that each sees the same machine load. Reported per
variant: the median training images/s (the training pass, from the epoch
rows) and its ratio to the plain run of the same round, and the wall time of
the run (``lr-auto`` includes its 100-step range test).

    python benchmarks/train_extras.py --data demo:cats --epochs 3 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time

VARIANTS = {
    "plain": {},
    "accumulate=4": {"accumulate": 4},
    "ema=0.99": {"ema": 0.99},
    "mixup+cutmix": {"mixup": 0.2, "cutmix": 1.0},
    "trivial": {"augment": "trivial"},
    "randaugment": {"augment": "randaugment"},
    "lr-auto": {"lr_find": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="demo:cats")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import os

    import torch

    import zoo
    from zoo.train import TrainConfig, load_folder_for

    data = load_folder_for("net", args.data, TrainConfig(progress=False))
    speeds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    ratios: dict[str, list[float]] = {name: [] for name in VARIANTS}
    walls: dict[str, list[float]] = {name: [] for name in VARIANTS}
    accs: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        plain = None
        for name, opts in VARIANTS.items():
            t0 = time.perf_counter()
            result = zoo.fit("net", data, epochs=args.epochs, batch_size=args.batch_size, progress=False, plot=False,
                             **opts)
            walls[name].append(time.perf_counter() - t0)
            speed = statistics.median(row["images_per_s"] for row in result.history)
            speeds[name].append(speed)
            plain = speed if name == "plain" else plain
            ratios[name].append(speed / plain)
            accs[name].append(result.history[-1].get("val_acc", float("nan")))
    print(f"load average {os.getloadavg()[0]:.1f} at the end; torch {torch.__version__}; {args.data}, "
          f"{args.epochs} epochs x {args.rounds} rounds")
    print(f"{'variant':<14} {'img/s':>8} {'vs plain':>9} {'wall s':>7} {'val acc':>8}")
    for name in VARIANTS:
        print(f"{name:<14} {statistics.median(speeds[name]):>8,.0f} {statistics.median(ratios[name]):>8.2f}x"
              f" {statistics.median(walls[name]):>7.1f} {statistics.median(accs[name]):>8.3f}")


if __name__ == "__main__":
    main()
