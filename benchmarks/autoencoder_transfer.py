"""Autoencoder transfer with few labels (the I2DL exercise, at CIFAR-10 scale).

* unlabelled: CIFAR-10 training images 0000..(N-1) of every class (labels ignored);
* labelled: 30 images per class (images 4000-4029: 300 in all);
* evaluation: 100 held-back images per class (images 4900-4999: 1,000 in all).

The three sets do not overlap. An ``ae_conv_32`` autoencoder is pretrained
on the unlabelled images (L2 reconstruction); then, on the 300 labelled
images, the same encoder architecture is trained

1. from scratch (random init, every layer trains, flips + crops),
2. from the pretrained encoder, frozen, with a new linear head (cached features),
3. from the pretrained encoder, frozen, with an MLP head (cached features),
4. from the pretrained encoder, every layer finetuned (the scratch recipe: AdamW, flips + crops),

and the accuracy on the evaluation images is printed for each.

    python benchmarks/autoencoder_transfer.py --data ../shared/data/cifar10/train
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def link_folder(cifar: Path, root: Path, parts: dict[str, range]) -> Path:
    for cls in sorted(p.name for p in cifar.iterdir() if p.is_dir()):
        for part, indices in parts.items():
            folder = root / part / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in indices:
                os.symlink(cifar / cls / f"{i:04d}.jpg", folder / f"{i:04d}.jpg")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cifar10/train"))
    parser.add_argument("--unlabelled-per-class", type=int, default=2000)
    parser.add_argument("--ae-epochs", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=40, help="epochs on the 300 labelled images")
    parser.add_argument("--arch", default="ae_conv_32")
    parser.add_argument("--bottleneck", type=int, help="code width (the architecture's default when not given)")
    parser.add_argument("--noise", type=float, default=0.0, help="denoising: input noise std in normalised units")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep the runs here instead of a temporary directory")
    args = parser.parse_args()

    import torch

    import zoo
    from zoo.transfer.encoder import pretrain_autoencoder
    from zoo.transfer.finetune import FinetuneOptions, finetune

    torch.set_num_threads(args.threads)
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="ae_transfer_"))
    unlabelled = link_folder(args.data, tmp / "unlabelled", {"all": range(args.unlabelled_per_class)})
    labelled = link_folder(args.data, tmp / "labelled", {"train": range(4000, 4030), "val": range(4900, 5000)})
    t0 = time.perf_counter()
    model_args = {"bottleneck": args.bottleneck} if args.bottleneck else {}
    ae = pretrain_autoencoder(args.arch, unlabelled, epochs=args.ae_epochs, batch_size=128, lr=2e-3, loss="l2",
                              noise=args.noise, out=tmp / "ae", model_kwargs=model_args,
                              log=lambda line: print(line, flush=True))
    ae_seconds = time.perf_counter() - t0
    quiet = dict(progress=False, plot=False, metrics_format="none")
    results: dict[str, dict] = {}

    def record(label: str, result, seconds: float) -> None:
        best = max(r["val_acc"] for r in result.history)
        results[label] = {"final_val_acc": round(result.final["val_acc"], 4), "best_val_acc": round(best, 4),
                          "seconds": round(seconds, 1)}
        print(f"{label:<34} final {100 * result.final['val_acc']:5.1f}%  best {100 * best:5.1f}%  ({seconds:.0f}s)",
              flush=True)

    t = time.perf_counter()
    torch.manual_seed(0)
    scratch = zoo.fit(args.arch, str(labelled), model_args=model_args, out=str(tmp / "scratch"), epochs=args.epochs,
                        batch_size=32, lr=1e-3, optimizer="adamw", weight_decay=1e-4, augment="crop,flip",
                        normalize="model", **quiet)
    record("scratch (all layers, augmented)", scratch, time.perf_counter() - t)
    runs = [
        ("encoder frozen + linear head", FinetuneOptions(encoder=str(tmp / "ae")), dict(lr=3e-3)),
        ("encoder frozen + mlp:256 head", FinetuneOptions(encoder=str(tmp / "ae"), head="mlp:256", head_dropout=0.3),
         dict(lr=1e-3)),
        ("encoder finetuned (all layers)", FinetuneOptions(encoder=str(tmp / "ae"), freeze="none", layer_decay=1.0),
         dict(lr=1e-3, augment="crop,flip", weight_decay=1e-4)),
    ]
    for label, options, extra in runs:
        t = time.perf_counter()
        result = finetune(None, str(labelled), options=options, epochs=args.epochs, batch_size=32,
                          optimizer="adamw", out=str(tmp / label.split()[1]), log=lambda line: None, **quiet, **extra)
        record(label, result, time.perf_counter() - t)
    summary = {
        "unlabelled_images": 10 * args.unlabelled_per_class, "labelled_images": 300, "eval_images": 1000,
        "ae_epochs": args.ae_epochs, "ae_seconds": round(ae_seconds, 1), "ae_val_loss": ae.val_loss,
        "epochs": args.epochs, "results": results,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
