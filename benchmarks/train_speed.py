"""zoo's trainer against the book's hand-written loop, in one run (not a test).

CIFAR-2 (airplane vs bird) from ../shared/data/cifar10/train: images 0-3999 of
each class train, 4000-4999 are held back for validation. Both sides train the
book's ``net`` with batch 64 and plain SGD (lr 1e-2, no momentum), from the
same initial weights, for the same number of epochs.

The book loop is built as chapter 7/8 builds it: every image decoded with PIL
and turned into a normalised tensor once (ToTensor + Normalize), a list of
``(tensor, label)``, a DataLoader over that list with shuffle, then forward,
loss, backward, step; accuracy on train and val at the end.

zoo runs ``zoo.fit("net", folder, ...)``: decoding into the uint8 cache,
mean/std of the training images, validation after every epoch, ``best`` and
``last`` checkpoints every epoch, metrics.jsonl and curves.png.

Reported: training images/s (median over epochs, the training pass only),
epoch time, whole-run wall time, final validation accuracy, and the ratios.
``--rss`` also trains ``net`` on all 50,000 CIFAR-10 images for one epoch in a
child process (``zoo train`` on the command line) and reports its peak RSS.

``--processes N`` also times whole processes, N rounds alternating: the
book loop as its own script (``--book-only``) against ``zoo train net`` on
the command line with no thread flag (each side with its own defaults), from
start to exit.

    python benchmarks/train_speed.py --epochs 10 --threads 1 [--interleave 6] [--rss] [--json out.json]
    python benchmarks/train_speed.py --epochs 10 --processes 3      (no --threads: the defaults)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cifar10" / "train"
CLASSES = ("airplane", "bird")
BOOK_MEAN = (0.4915, 0.4823, 0.4468)
BOOK_STD = (0.2470, 0.2435, 0.2616)


def make_cifar2_folder(root: Path, data: Path, n_train: int, n_val: int) -> Path:
    """train/ and val/ of symlinks: the first n_train of each class, then the last n_val."""
    for cls in CLASSES:
        files = sorted((data / cls).glob("*.jpg"))
        for split, chosen in (("train", files[:n_train]), ("val", files[len(files) - n_val:])):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for f in chosen:
                (folder / f.name).symlink_to(f)
    return root


def book_run(root: Path, epochs: int, seed: int) -> dict:
    """The book's loop, timed the same way (decode + train + validate)."""
    import torch
    from PIL import Image
    from torch import nn, optim
    from torchvision import transforms

    import zoo

    start = time.perf_counter()
    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize(BOOK_MEAN, BOOK_STD)])

    def load(split: str) -> list:
        items = []
        for label, cls in enumerate(CLASSES):
            for f in sorted((root / split / cls).iterdir()):
                items.append((to_tensor(Image.open(f).convert("RGB")), label))
        return items

    cifar2, cifar2_val = load("train"), load("val")
    decode_s = time.perf_counter() - start
    torch.manual_seed(seed)
    model = zoo.create_model("net", num_classes=2)
    train_loader = torch.utils.data.DataLoader(cifar2, batch_size=64, shuffle=True)
    optimizer = optim.SGD(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    epoch_times, rates = [], []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        loss_train = 0.0
        for imgs, labels in train_loader:
            outputs = model(imgs)
            loss = loss_fn(outputs, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_train += loss.item()
        dt = time.perf_counter() - t0
        epoch_times.append(dt)
        rates.append(len(cifar2) / dt)

    def accuracy(items: list) -> float:
        loader = torch.utils.data.DataLoader(items, batch_size=64, shuffle=False)
        correct = total = 0
        with torch.no_grad():
            for imgs, labels in loader:
                _, predicted = torch.max(model(imgs), dim=1)
                total += labels.shape[0]
                correct += int((predicted == labels).sum())
        return correct / total

    train_acc, val_acc = accuracy(cifar2), accuracy(cifar2_val)
    return {
        "decode_s": decode_s,
        "images_per_s": statistics.median(rates),
        "epoch_s": statistics.median(epoch_times),
        "wall_s": time.perf_counter() - start,
        "train_acc": train_acc,
        "val_acc": val_acc,
        "final_loss": loss_train / len(train_loader),
    }


def zoo_run(root: Path, out: Path, epochs: int, seed: int) -> dict:
    """zoo.train on the same folder: everything it does is inside the wall time."""
    import zoo

    start = time.perf_counter()
    result = zoo.fit("net", str(root), out=out, epochs=epochs, batch_size=64, lr=1e-2, momentum=0.0,
                       seed=seed, progress=False)
    wall = time.perf_counter() - start
    rows = result.history
    return {
        "images_per_s": statistics.median(r["images_per_s"] for r in rows),
        "epoch_s": statistics.median(r["epoch_time"] for r in rows),
        "wall_s": wall,
        "train_acc": rows[-1]["train_acc"],
        "val_acc": rows[-1]["val_acc"],
        "final_loss": rows[-1]["train_loss"],
    }


def interleaved(root: Path, epochs: int, seed: int) -> dict:
    """Training images/s of both loops, one book epoch then one zoo epoch, alternating.

    On a shared machine the load changes from minute to minute; epochs run
    side by side see the same load, so their ratio is the fairest figure.
    """
    import torch
    from PIL import Image
    from torch import nn, optim
    from torchvision import transforms

    import zoo
    from zoo.data import load_image_data
    from zoo.train import Trainer

    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize(BOOK_MEAN, BOOK_STD)])
    cifar2 = [(to_tensor(Image.open(f).convert("RGB")), label)
              for label, cls in enumerate(CLASSES) for f in sorted((root / "train" / cls).iterdir())]
    torch.manual_seed(seed)
    model = zoo.create_model("net", num_classes=2)
    loader = torch.utils.data.DataLoader(cifar2, batch_size=64, shuffle=True)
    optimizer = optim.SGD(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    trainer = Trainer("net", load_image_data(root, (3, 32, 32)), epochs=epochs, batch_size=64, lr=1e-2,
                      momentum=0.0, seed=seed, progress=False)
    trainer.setup()
    book_rates, zoo_rates = [], []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        for imgs, labels in loader:
            outputs = model(imgs)
            loss = loss_fn(outputs, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        book_rates.append(len(cifar2) / (time.perf_counter() - t0))
        zoo_rates.append(trainer.train_epoch(epoch)["images_per_s"])
    ratios = [z / b for z, b in zip(zoo_rates, book_rates)]
    return {"book_images_per_s": statistics.median(book_rates), "zoo_images_per_s": statistics.median(zoo_rates),
            "speedup_median": statistics.median(ratios), "speedup_min": min(ratios), "speedup_max": max(ratios)}


def peak_rss_full(data: Path, threads: int | None) -> float:
    """Peak RSS (MB) of ``zoo train net`` on all 50,000 images, one epoch, in a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "zoo", "train", "net", "--data", str(data), "--epochs", "1", "--out",
               f"{tmp}/out", "--val-split", "0", "--momentum", "0", "--quiet"]
        if threads:
            cmd += ["--threads", str(threads)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        print(f"full CIFAR-10 epoch run took {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def processes(args: argparse.Namespace) -> None:
    """Whole-process wall times, alternating: the book script, ``zoo train net`` with its defaults, and
    ``zoo train net --threads CORES`` (torch's default thread count, zoo's default before it chose one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    times: dict[str, list[float]] = {"book": [], "zoo": [], f"zoo --threads {cores}": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = make_cifar2_folder(Path(tmp) / "cifar2", args.data, args.n_train, args.n_val)
        zoo_cmd = [sys.executable, "-m", "zoo", "train", "net", "--data", str(root), "--epochs", str(args.epochs),
                   "--batch-size", "64", "--lr", "0.01", "--momentum", "0", "--seed", str(args.seed), "--quiet",
                   "--no-plot"]
        for i in range(args.processes):
            commands = {
                "book": [sys.executable, __file__, "--book-only", str(root), "--epochs", str(args.epochs),
                         "--seed", str(args.seed)],
                "zoo": zoo_cmd + ["--out", f"{tmp}/zoo{i}"],
                f"zoo --threads {cores}": zoo_cmd + ["--out", f"{tmp}/zoot{i}", "--threads", str(cores)],
            }
            for name, cmd in commands.items():
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - t0)
            print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items())
                  + f", load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
    ratios = {k: [b / z for b, z in zip(times["book"], v)] for k, v in times.items() if k != "book"}
    print(json.dumps({"epochs": args.epochs, "seconds": times, "book_over": ratios,
                      "book_over_median": {k: statistics.median(v) for k, v in ratios.items()},
                      "load_avg_1min": os.getloadavg()[0]}, indent=2))


def warm_up() -> None:
    """Pay the one-off imports both sides need (torch.optim pulls in torch._dynamo, seconds
    on a cold start) before either is timed, so neither is charged for them."""
    import torch
    import torchvision.transforms  # noqa: F401
    from PIL import Image  # noqa: F401

    import zoo

    model = zoo.create_model("net", num_classes=2)
    torch.optim.SGD(model.parameters(), lr=1e-2)
    torch.utils.data.DataLoader([(torch.zeros(1), 0)], batch_size=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both loops")
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-val", type=int, default=1000)
    parser.add_argument("--order", choices=["book-first", "zoo-first"], default="book-first")
    parser.add_argument("--rss", action="store_true", help="also measure peak RSS on all 50,000 images")
    parser.add_argument("--interleave", type=int, default=0, metavar="EPOCHS",
                        help="also alternate book and zoo epochs this many times (images/s under the same load)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--processes", type=int, default=0, metavar="ROUNDS",
                        help="time whole processes instead: the book script against 'zoo train net', alternating")
    parser.add_argument("--book-only", type=Path, help=argparse.SUPPRESS)  # the child of --processes
    args = parser.parse_args()
    if args.book_only:
        print(json.dumps(book_run(args.book_only, args.epochs, args.seed)))
        return
    if not args.data.is_dir():
        sys.exit(f"no CIFAR-10 folder at {args.data}; pass --data")
    if args.processes:
        processes(args)
        return
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_cifar2_folder(Path(tmp) / "cifar2", args.data, args.n_train, args.n_val)
        runs = {}
        order = ["book", "zoo"] if args.order == "book-first" else ["zoo", "book"]
        for name in order:
            runs[name] = book_run(root, args.epochs, args.seed) if name == "book" else zoo_run(
                root, Path(tmp) / "out", args.epochs, args.seed)
            print(f"{name}: " + json.dumps({k: round(v, 4) for k, v in runs[name].items()}), file=sys.stderr)
        alternating = interleaved(root, args.interleave, args.seed) if args.interleave else None
    book, z = runs["book"], runs["zoo"]
    report = {
        "epochs": args.epochs,
        "threads": torch.get_num_threads(),
        "load_avg_1min": os.getloadavg()[0],
        "book": book,
        "zoo": z,
        "speedup_images_per_s": z["images_per_s"] / book["images_per_s"],
        "speedup_wall": book["wall_s"] / z["wall_s"],
        "val_acc_diff_points": 100 * (z["val_acc"] - book["val_acc"]),
    }
    if alternating:
        report["interleaved"] = alternating
    if args.rss:
        report["peak_rss_mb_full_cifar10"] = peak_rss_full(args.data, args.threads)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
