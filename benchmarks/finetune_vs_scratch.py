"""The README's main command against training the same net from scratch for the same time.

Runs ``zoo finetune cifar8_resnet --data demo:cats`` with its defaults (the
shipped backbone, frozen, new linear head, cached features) and records its
wall time T and best validation accuracy. Then trains ``cifar8_resnet`` from
scratch on the same data (``zoo train`` defaults, and once more with AdamW +
flips/crops) for up to --scratch-seconds, and reports the best validation
accuracy reached within T and within the whole budget.

    python benchmarks/finetune_vs_scratch.py [--threads 2] [--scratch-seconds 120]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="cifar8_resnet")
    parser.add_argument("--data", default="demo:cats")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scratch-seconds", type=float, default=120.0)
    args = parser.parse_args()

    import torch
    from click.testing import CliRunner

    import zoo
    from zoo.cli import cli
    from zoo.train import Callback, TrainConfig

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="ft_vs_scratch_"))
    t0 = time.perf_counter()
    run = CliRunner().invoke(cli, ["finetune", args.arch, "--data", args.data, "--out", str(tmp / "ft"), "--json", "-q"],
                             catch_exceptions=False)
    finetune_seconds = time.perf_counter() - t0
    summary = json.loads(run.output[run.output.index("{"):])
    ft_acc = summary["best"]["val_acc"]
    print(f"finetune {args.arch} (defaults): best val acc {100 * ft_acc:.1f}% in {finetune_seconds:.1f}s", flush=True)

    class Clock(Callback):
        """Wall time at each epoch's end; stops the run when the budget is spent."""

        def __init__(self) -> None:
            self.start = time.perf_counter()
            self.marks: list[tuple[float, float]] = []

        def on_epoch_end(self, trainer, epoch, metrics) -> None:
            self.marks.append((time.perf_counter() - self.start, metrics["val_acc"]))
            if self.marks[-1][0] > args.scratch_seconds:
                trainer.config.early_stop = 0  # ends the loop after this epoch

    results = {"finetune": {"seconds": round(finetune_seconds, 1), "best_val_acc": ft_acc}}
    recipes = {
        "scratch (zoo train defaults)": {},
        "scratch (adamw 1e-3, crop+flip)": {"optimizer": "adamw", "lr": 1e-3, "augment": "crop,flip"},
    }
    for label, recipe in recipes.items():
        clock = Clock()
        torch.manual_seed(0)
        zoo.fit(args.arch, args.data, out=str(tmp / label.split()[1]), config=TrainConfig(epochs=1000, **recipe),
                  progress=False, plot=False, metrics_format="none", callbacks=[clock])
        within = [acc for t, acc in clock.marks if t <= finetune_seconds]
        same_time = max(within) if within else None
        best = max(acc for _, acc in clock.marks)
        results[label] = {"best_val_acc_within_finetune_time": same_time, "best_val_acc_within_budget": best,
                          "epochs": len(clock.marks), "seconds": round(clock.marks[-1][0], 1)}
        shown = f"{100 * same_time:.1f}%" if same_time is not None else "no epoch finished"
        print(f"{label}: within {finetune_seconds:.0f}s {shown}; within {clock.marks[-1][0]:.0f}s"
              f" ({len(clock.marks)} epochs) {100 * best:.1f}%", flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
