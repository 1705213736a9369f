"""Reproduce the CIFAR-2 table of 'Deep Learning with PyTorch', chapter 8, with zoo.

    python benchmarks/book_cifar2.py --epochs 100 --out runs/book_cifar2
    python benchmarks/book_cifar2.py --epochs 2 --per-class 300 --configs baseline,dropout   # a smoke run

Airplane vs bird from ../shared/data/cifar10/train: images 0-3999 of each
class train, 4000-4999 are held back as validation (the book validates on
CIFAR-10's test split, which is not in shared/). Every configuration trains
through zoo's own Trainer exactly as published: SGD lr 1e-2 without momentum,
batch 64, cross-entropy, the book's mean/std, no augmentation.

Accuracy is reported twice:

* ``proper``: the model in eval mode (dropout off, batch norm on its running
  statistics), which is how zoo evaluates;
* ``book``: the model left in training mode under ``torch.no_grad()``, as the
  published ``validate()`` does (it never calls ``model.eval()``), which only
  differs for the dropout and batch-norm nets.

Results go to OUT/results.json (one entry per configuration, written as each
finishes so a long run can be resumed with --skip-done) and each trained
checkpoint to OUT/<config>/best and /last. ``--report`` turns results.json
into docs/results.md's table and the bar chart docs/book_cifar2.png.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

BOOK_MEAN = (0.4915, 0.4823, 0.4468)
BOOK_STD = (0.2470, 0.2435, 0.2616)

# name -> (architecture, overrides of the training options, published train / val accuracy)
CONFIGS: dict[str, tuple[str, dict, tuple[float, float]]] = {
    "baseline": ("net", {}, (0.93, 0.89)),
    "width": ("net_width", {}, (0.96, 0.90)),
    "l2": ("net", {"l2": 0.001}, (0.90, 0.87)),
    "dropout": ("net_dropout", {}, (0.89, 0.88)),
    "batchnorm": ("net_batchnorm", {}, (1.00, 0.89)),
    "depth": ("net_depth", {}, (0.95, 0.90)),
    "res": ("net_res", {}, (0.97, 0.90)),
    "res_deep": ("net_res_deep", {"lr": 3e-3}, (0.97, 0.86)),
}
CLASSES = ("airplane", "bird")


def make_split(source: Path, dest: Path, per_class: int, val_per_class: int) -> Path:
    """Link the first ``per_class`` images of each class as train/, the last ``val_per_class`` as val/."""
    for cls in CLASSES:
        files = sorted((source / cls).glob("*.jpg"))
        if len(files) < per_class + val_per_class:
            raise SystemExit(f"{source / cls} has {len(files)} images; need {per_class + val_per_class}")
        for part, chosen in (("train", files[:per_class]), ("val", files[-val_per_class:])):
            folder = dest / part / cls
            folder.mkdir(parents=True, exist_ok=True)
            for f in chosen:
                link = folder / f.name
                if not link.exists():
                    os.symlink(f.resolve(), link)
    return dest


def accuracy(model, images, labels, mean, std, *, train_mode: bool, batch: int = 64) -> float:
    """Accuracy over uint8 ``images``; ``train_mode`` reproduces the book's validate()."""
    import torch

    net = copy.deepcopy(model)  # train-mode batch norm would move the running statistics
    net.train(train_mode)
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = (images[i : i + batch].float() / 255 - m) / s
            correct += (net(x).argmax(1) == labels[i : i + batch]).sum().item()
    return correct / len(images)


def run_config(name: str, data, args) -> dict:
    import torch

    from zoo.train import TrainConfig, Trainer

    arch, overrides, published = CONFIGS[name]
    options = dict(
        epochs=args.deep_epochs if name == "res_deep" and args.deep_epochs else args.epochs,
        batch_size=64, lr=1e-2, momentum=0.0, loss="ce", augment="none", seed=args.seed,
        out=str(Path(args.out) / name), progress=args.progress, plot=True, metrics_format="jsonl",
        threads=args.threads, device=args.device,
    )
    options.update(overrides)
    config = TrainConfig(**options)
    start = time.perf_counter()
    trainer = Trainer(arch, data, None, config, mean=BOOK_MEAN, std=BOOK_STD)
    result = trainer.fit()
    wall = time.perf_counter() - start
    model = result.model.to("cpu")
    train_split, val_split = data.train, data.val
    # The table reports the model after the last epoch, as the book does.
    row = {
        "config": name,
        "architecture": arch,
        "options": overrides,
        "epochs": config.epochs,
        "published_train": published[0],
        "published_val": published[1],
        "train_acc": accuracy(model, train_split.images, train_split.labels, BOOK_MEAN, BOOK_STD, train_mode=False),
        "val_acc": accuracy(model, val_split.images, val_split.labels, BOOK_MEAN, BOOK_STD, train_mode=False),
        "book_train_acc": accuracy(model, train_split.images, train_split.labels, BOOK_MEAN, BOOK_STD, train_mode=True),
        "book_val_acc": accuracy(model, val_split.images, val_split.labels, BOOK_MEAN, BOOK_STD, train_mode=True),
        "wall_s": wall,
        "train_images_per_s": sum(h.get("images_per_s", 0) for h in result.history) / max(1, len(result.history)),
        "params": sum(p.numel() for p in model.parameters()),
        "checkpoint": str(result.last_path) if result.last_path else None,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    return row


def write_report(results: list[dict], md_path: Path, png_path: Path) -> None:
    """The table in docs/results.md (between markers) and the bar chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = [c for c in CONFIGS if any(r["config"] == c for r in results)]
    rows = {r["config"]: r for r in results}
    lines = [
        "| configuration | architecture | epochs | published train / val | zoo train / val (eval mode) | "
        "book-style val (train mode) | val gap to published | wall time | train images/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in order:
        r = rows[c]
        gap = (r["val_acc"] - r["published_val"]) * 100
        lines.append(
            f"| {c} | `{r['architecture']}`{' ' + json.dumps(r['options']) if r['options'] else ''} | {r['epochs']} | "
            f"{r['published_train']:.2f} / {r['published_val']:.2f} | {r['train_acc']:.3f} / {r['val_acc']:.3f} | "
            f"{r['book_val_acc']:.3f} | {gap:+.1f} pt | {r['wall_s'] / 60:.1f} min | {r['train_images_per_s']:,.0f} |"
        )
    table = "\n".join(lines)
    text = md_path.read_text() if md_path.exists() else ""
    start, end = "<!-- book-table:start -->", "<!-- book-table:end -->"
    if start in text and end in text:
        text = text.split(start)[0] + start + "\n" + table + "\n" + end + text.split(end, 1)[1]
    else:
        text = text + f"\n{start}\n{table}\n{end}\n"
    md_path.write_text(text)

    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.2
    xs = range(len(order))
    series = [
        ("published train", [rows[c]["published_train"] for c in order], "#9ecae1"),
        ("published val", [rows[c]["published_val"] for c in order], "#3182bd"),
        ("zoo train", [rows[c]["train_acc"] for c in order], "#fdae6b"),
        ("zoo val", [rows[c]["val_acc"] for c in order], "#e6550d"),
    ]
    for i, (label, values, colour) in enumerate(series):
        ax.bar([x + (i - 1.5) * width for x in xs], values, width, label=label, color=colour)
    ax.set_xticks(list(xs), order)
    ax.set_ylim(0.5, 1.0)
    ax.set_ylabel("accuracy")
    ax.set_title("CIFAR-2 (airplane vs bird): published vs reproduced with zoo")
    ax.legend(ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/cifar10/train"))
    parser.add_argument("--out", default="runs/book_cifar2")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--deep-epochs", type=int, default=None, help="epochs for net_res_deep (default: --epochs)")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--per-class", type=int, default=4000)
    parser.add_argument("--val-per-class", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--skip-done", action="store_true", help="keep configurations already in results.json")
    parser.add_argument("--report", action="store_true", help="only write docs/results.md and the chart")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else []
    docs = Path(__file__).resolve().parents[1] / "docs"
    if args.report:
        write_report(results, docs / "results.md", docs / "book_cifar2.png")
        return

    from zoo.io import write_json
    from zoo.data import load_image_data

    split = make_split(Path(args.data_root), out / f"data_{args.per_class}_{args.val_per_class}", args.per_class, args.val_per_class)
    data = load_image_data(split, (3, 32, 32))
    for name in args.configs.split(","):
        if name not in CONFIGS:
            raise SystemExit(f"unknown configuration {name!r}; choose from {', '.join(CONFIGS)}")
        if args.skip_done and any(r["config"] == name for r in results):
            continue
        row = run_config(name, data, args)
        row["per_class"], row["val_per_class"] = args.per_class, args.val_per_class
        results = [r for r in results if r["config"] != name] + [row]
        write_json(results_path, results)
        print(
            f"{name:<10} {row['architecture']:<14} train {row['train_acc']:.3f} val {row['val_acc']:.3f}"
            f" (book-style val {row['book_val_acc']:.3f}; published {row['published_train']:.2f} / {row['published_val']:.2f})"
            f" {row['wall_s'] / 60:.1f} min, {row['train_images_per_s']:,.0f} img/s",
            flush=True,
        )


if __name__ == "__main__":
    main()
