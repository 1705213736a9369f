"""``zoo compare``: which backbone suits this data and this latency budget.

Each model whose pretrained weights are on this machine gets today's frozen head: the backbone's
features computed once (zoo's feature cache and engine), a linear head trained on them. Per model it
reports the validation accuracy, the feature pass's time, the batch-1 latency of the whole finetuned
model in ONNX Runtime (exported and validated), and the parameter count. Models without weights here
are listed as skipped with the way to get them; the others are still compared.
"""

from __future__ import annotations

import fnmatch
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from zoo.errors import ZooError


@dataclass
class Row:
    """One model's line of the comparison (``skipped`` holds the reason when it was not compared)."""

    model: str
    val_acc: float | None = None
    feature_seconds: float | None = None
    latency_ms: float | None = None
    params: int | None = None
    seconds: float | None = None  # the whole model's turn: build, features, head, export, timing
    checkpoint: str | None = None
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def expand(names: Sequence[str]) -> tuple[list[str], list[Row]]:
    """Models for ``names`` (registry names, fnmatch patterns, checkpoint directories), and rows for what
    matched nothing."""
    from zoo.plugins import get_spec, list_models
    from zoo.transfer.finetune import is_checkpoint

    if not names:
        raise ZooError("name at least one model or pattern to compare, e.g. 'zoo compare --data DIR efficientnet_lite*'")
    known = list_models()
    chosen: list[str] = []
    missing: list[Row] = []
    for name in names:
        if is_checkpoint(name):  # a zoo checkpoint is a backbone too
            hits = [name]
        elif any(c in name for c in "*?["):
            hits = [m for m in known if fnmatch.fnmatchcase(m, name)]
            if not hits:
                missing.append(Row(name, skipped="the pattern matches no registered model; see 'zoo list'"))
        else:
            try:
                hits = [get_spec(name).name]
            except ZooError as exc:
                missing.append(Row(name, skipped=str(exc)))
                hits = []
        chosen += [h for h in hits if h not in chosen]
    return chosen, missing


def weights_here(name: str) -> str | None:
    """None when ``name``'s pretrained weights are on this machine; else why not and the way out."""
    from zoo.plugins import get_spec
    from zoo.pretrained import resolve_weights
    from zoo.transfer.finetune import is_checkpoint

    if is_checkpoint(name):
        return None
    try:
        resolve_weights(get_spec(name), allow_download=False)
    except ZooError as exc:
        return str(exc)
    return None


def compare(names: Sequence[str], data: Any, *, out: str | Path, input_size: Sequence[int] | None = None,
            epochs: int = 20, lr: float = 3e-3, batch_size: int = 64, threads: int | None = None,
            latency_runs: int = 20, seed: int = 0, val_split: float = 0.1, feature_engine: str = "auto",
            log: Callable[[str], None] | None = None) -> list[Row]:
    """Compare ``names`` (names or patterns) on ``data``; rows sorted by validation accuracy, skipped last.

    Each compared model's checkpoint is kept under ``out/NAME/best``; ``input_size`` (C, H, W) is the
    same for every model when given, else each model's own.
    """
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    chosen, rows = expand(names)
    compared: list[Row] = []
    for name in chosen:
        reason = weights_here(name)
        if reason is not None:
            rows.append(Row(name, skipped=reason))
            say(f"{name}: skipped: {reason}")
            continue
        say(f"{name}: features and a linear head ...")
        row = _one(name, data, Path(out) / Path(name).name, input_size=input_size, epochs=epochs, lr=lr, batch_size=batch_size,
                   threads=threads, latency_runs=latency_runs, seed=seed, val_split=val_split,
                   feature_engine=feature_engine, say=say)
        compared.append(row)
    if not compared:
        raise ZooError("no model to compare: " + "; ".join(f"{r.model}: {r.skipped}" for r in rows))
    compared.sort(key=lambda r: (-(r.val_acc if r.val_acc is not None else -1), r.latency_ms or 0))
    return compared + rows


def _one(name: str, data: Any, out: Path, *, input_size, epochs, lr, batch_size, threads, latency_runs, seed,
         val_split, feature_engine, say) -> Row:
    from zoo.export.bench import onnx_latency_ms
    from zoo.export.onnx_export import export_onnx
    from zoo.export.source import load_source
    from zoo.transfer.finetune import FinetuneOptions, finetune

    started = time.perf_counter()
    options = FinetuneOptions(freeze="backbone", cache_features=True, feature_engine=feature_engine)
    result = finetune(name, data, options=options, out=str(out), epochs=epochs, lr=lr, optimizer="adamw",
                      normalize="model", batch_size=batch_size, threads=threads, seed=seed, val_split=val_split,
                      input_size=tuple(input_size) if input_size else None, progress=False, plot=False,
                      metrics_format="none", log=lambda line: None)
    params = sum(p.numel() for p in result.model.parameters())
    model, config = load_source(str(result.best_path))
    onnx = export_onnx(model, config, out / "onnx", batch_size=2, log=None)
    latency = onnx_latency_ms(onnx, config["input_size"], threads=threads, runs=latency_runs)
    row = Row(name, val_acc=result.val_acc, feature_seconds=getattr(result, "feature_seconds", None),
              latency_ms=latency, params=params, seconds=time.perf_counter() - started,
              checkpoint=str(result.best_path))
    say(f"{name}: val_acc {_pct(row.val_acc)}, features {row.feature_seconds or 0:.1f} s,"
        f" ONNX Runtime {latency:.1f} ms at batch 1, {params:,} parameters")
    return row


def format_table(rows: Sequence[Row]) -> str:
    """The comparison as a text table, then the skipped models with their way out."""
    from zoo.text import table

    done = [r for r in rows if r.skipped is None]
    lines = [table([[r.model, _pct(r.val_acc), f"{r.feature_seconds or 0:.1f} s", f"{r.latency_ms:.1f} ms",
                     f"{r.params / 1e6:.2f} M"] for r in done], ["MODEL", "VAL ACC", "FEATURES", "ORT BATCH 1", "PARAMS"])]
    lines += [f"skipped {r.model}: {r.skipped}" for r in rows if r.skipped is not None]
    return "\n".join(lines)


def plot(rows: Sequence[Row], path: str | Path) -> Path:
    """A PNG of validation accuracy against ONNX Runtime latency, one labelled point per model."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from zoo.io import atomic_write

    done = [r for r in rows if r.skipped is None and r.val_acc is not None]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for r in done:
        ax.scatter(r.latency_ms, 100 * r.val_acc, s=20 + r.params / 1e5)
        ax.annotate(r.model, (r.latency_ms, 100 * r.val_acc), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("ONNX Runtime latency at batch 1 (ms)")
    ax.set_ylabel("validation accuracy (%), linear head")
    ax.set_title("zoo compare (point size: parameters)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"
