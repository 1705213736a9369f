"""Reproduce the shipped backbone zoo/assets/backbones/cifar8_resnet.safetensors.

Trains ``cifar8_resnet`` on the eight CIFAR-10 classes other than cat and dog,
using only images 0000-3999 of each class (3800 to train, 200 to watch
accuracy); images 4000-4999 and all cats and dogs stay untouched, so the
``demo:cats`` set (taken from the end of the cat and dog folders) is never seen.

    python benchmarks/pretrain_backbone.py --data ../shared/data/cifar10/train

Plain loop on purpose (SGD + Nesterov, one-cycle schedule, flips and padded
random crops done on whole batches), so it needs nothing but torch and pillow
and runs in about 15 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

CLASSES = ("airplane", "automobile", "bird", "deer", "frog", "horse", "ship", "truck")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "zoo" / "assets" / "backbones" / "cifar8_resnet.safetensors"


def load_split(root: Path, first: int, last: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images first..last-1 of each class as a uint8 NCHW tensor and labels."""
    images, labels = [], []
    for label, name in enumerate(CLASSES):
        for i in range(first, last):
            with Image.open(root / name / f"{i:04d}.jpg") as img:
                images.append(np.asarray(img.convert("RGB").resize((32, 32), Image.BILINEAR)))
            labels.append(label)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(labels)


def normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x.float() / 255.0 - mean) / std


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and 4-pixel padded random crops, per image."""
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    dx, dy = torch.randint(0, 9, (2,), generator=gen).tolist()  # one shift per batch keeps it cheap
    return padded[:, :, dy : dy + 32, dx : dx + 32]


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mean, std) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), 500):
            correct += (model(normalise(x[i : i + 500], mean, std)).argmax(1) == y[i : i + 500]).sum().item()
    return correct / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cifar10/train"))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import zoo
    from zoo.checkpoint import make_config, state_dict_for_saving
    from zoo.io import METADATA_KEY

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    spec = zoo.get_spec("cifar8_resnet")
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)

    t0 = time.time()
    x_train, y_train = load_split(args.data, 0, 3800)
    x_val, y_val = load_split(args.data, 3800, 4000)
    print(f"loaded {len(x_train)} train / {len(x_val)} val images in {time.time() - t0:.0f}s", flush=True)

    model = zoo.create_model("cifar8_resnet", num_classes=len(CLASSES))
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, momentum=0.9, nesterov=True,
    )
    steps = args.epochs * (len(x_train) // args.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps, pct_start=0.25)
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        seen, loss_sum, correct = 0, 0.0, 0
        for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
            idx = order[i : i + args.batch_size]
            xb = normalise(augment(x_train[idx], gen), mean, std)
            out = model(xb)
            loss = F.cross_entropy(out, y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            seen += len(idx)
            loss_sum += loss.item() * len(idx)
            correct += (out.argmax(1) == y_train[idx]).sum().item()
        acc = evaluate(model, x_val, y_val, mean, std)
        print(
            f"epoch {epoch + 1}/{args.epochs}  loss {loss_sum / seen:.3f}  train acc {correct / seen:.3f}"
            f"  val acc {acc:.3f}  ({time.time() - t0:.0f}s)",
            flush=True,
        )

    from safetensors.torch import save_file

    from zoo.io import atomic_write

    config = make_config(
        model,
        class_names=list(CLASSES),
        train_args={k: str(v) for k, v in vars(args).items()},
        metrics={"val_acc": acc, "train_images": len(x_train), "val_images": len(x_val)},
    )
    state = state_dict_for_saving(model)
    atomic_write(args.out, lambda tmp: save_file(state, str(tmp), metadata={METADATA_KEY: __import__("json").dumps(config)}))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), val acc {acc:.3f}")


if __name__ == "__main__":
    main()
