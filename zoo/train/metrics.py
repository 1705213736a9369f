"""Training history on disk (JSONL / CSV), the curves plot, and classification metrics."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Sequence

from zoo.io import atomic_write

METRICS_FORMATS = ("jsonl", "csv", "both", "none")


def write_history(out: Path, history: Sequence[dict[str, Any]], fmt: str = "jsonl") -> list[Path]:
    """(Re)write ``metrics.jsonl`` and/or ``metrics.csv`` under ``out``; each rename is atomic."""
    written: list[Path] = []
    if fmt in ("jsonl", "both"):
        text = "".join(json.dumps(row, default=float) + "\n" for row in history)
        written.append(atomic_write(out / "metrics.jsonl", lambda p: p.write_text(text)))
    if fmt in ("csv", "both"):
        keys: list[str] = []
        for row in history:
            keys.extend(k for k in row if k not in keys)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
        text = buf.getvalue()
        written.append(atomic_write(out / "metrics.csv", lambda p: p.write_text(text)))
    return written


def preload_matplotlib() -> None:
    """Import matplotlib in a background thread (about a second), so the final plot does not wait for it."""
    import sys
    import threading

    if "matplotlib.pyplot" in sys.modules:
        return

    def load() -> None:
        try:
            import matplotlib

            matplotlib.use("Agg", force=True)
            import matplotlib.pyplot  # noqa: F401
        except Exception:  # plot_curves reports a real problem when it runs
            pass

    threading.Thread(target=load, name="zoo-preload-matplotlib", daemon=True).start()


def plot_curves(history: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path | None:
    """Loss and accuracy per epoch, train and val, as a PNG; ``None`` when there is nothing to draw."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display needed, never opens a window
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric, label in ((axes[0], "loss", "loss"), (axes[1], "acc", "accuracy")):
        for split, style in (("train", "-o"), ("val", "-s")):
            key = f"{split}_{metric}"
            values = [row.get(key) for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, [float("nan") if v is None else v for v in values], style, ms=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda p: fig.savefig(p, dpi=100, format="png"))
    finally:
        plt.close(fig)


def confusion_matrix(preds, targets, num_classes: int):
    """(num_classes, num_classes) counts: rows are true classes, columns predictions."""
    import torch

    idx = targets.to(torch.long) * num_classes + preds.to(torch.long)
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(confusion) -> list[float | None]:
    """Recall of each class (None for classes absent from the data)."""
    totals = confusion.sum(1)
    return [float(confusion[i, i] / totals[i]) if totals[i] > 0 else None for i in range(confusion.shape[0])]


def average_precision(scores, targets) -> list[float | None]:
    """Average precision of each class (column): the mean, over the class's positives, of the precision
    among the images ranked at or above each one; None for a class without positives."""
    import torch

    scores, targets = scores.double(), (targets > 0.5).double()
    n = scores.shape[0]
    ranks = torch.arange(1, n + 1, dtype=torch.float64)
    out: list[float | None] = []
    for c in range(scores.shape[1]):
        hits = targets[torch.argsort(-scores[:, c], stable=True), c]
        positives = float(hits.sum())
        out.append(float((torch.cumsum(hits, 0) / ranks * hits).sum() / positives) if positives else None)
    return out


def f1_scores(scores, targets, threshold: float) -> list[float | None]:
    """F1 of each class when scores at or above ``threshold`` say yes; None when the class is never
    present nor predicted."""
    pred, true = scores >= threshold, targets > 0.5
    tp = (pred & true).sum(0).double()
    wrong = (pred ^ true).sum(0).double()
    return [float(2 * t / (2 * t + w)) if (2 * t + w) > 0 else None for t, w in zip(tp, wrong)]


def mean_of(values) -> float | None:
    """The mean of the values that are not None (a macro average), or None when there are none."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
