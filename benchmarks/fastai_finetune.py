"""fastai's ``vision_learner(...).fine_tune(N)`` on demo:cats (or ``--data``), with zoo's EfficientNet-Lite0 ImageNet weights.

The comparison point for zoo's fine-tuning recipe (docs/transfer.md). Run it
from a separate virtualenv so fastai never becomes a dependency of zoo:

    python -m venv --system-site-packages /tmp/fastai-venv     # reuses the installed torch
    /tmp/fastai-venv/bin/pip install fastai
    PYTHONPATH=. /tmp/fastai-venv/bin/python benchmarks/fastai_finetune.py \\
        --heldout HELDOUT_DIR --size 160 --epochs 3

The backbone is the one zoo builds (``zoo.create_model("efficientnet_lite0",
pretrained=True)``: the same tensors, the same normalisation, 0.5/0.5); fastai
cuts it at its pooling layer and adds its usual head. Data: demo:cats'
train/ for training, its val/ as fastai's validation set, every image resized
to --size; fastai's default ``aug_transforms()``. Prints one JSON line: the
wall time of building the learner and ``fine_tune`` (no held-out scoring in
it) and its CPU time (a fairer figure on a shared machine), and the accuracy on the held-out folder (class sub-folders).
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heldout", required=True, help="image folder (cat/, dog/) neither side trained on")
    parser.add_argument("--data", help="class folders to train on, 10%% held back for validation (seed 0), as zoo's"
                                       " --val-split 0.1 does [demo:cats' own train/ and val/]")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=3, help="fine_tune(N): N epochs after the frozen one")
    parser.add_argument("--freeze-epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from fastai.vision.all import (ImageDataLoaders, Normalize, Resize, aug_transforms, accuracy,
                                   get_image_files, set_seed, vision_learner)

    import zoo
    from zoo.data.folder import resolve_data_path

    torch.set_num_threads(args.threads)
    set_seed(args.seed, reproducible=True)
    started, cpu_started = time.perf_counter(), time.process_time()
    common = dict(item_tfms=Resize(args.size), bs=args.batch_size, num_workers=0,
                  batch_tfms=[*aug_transforms(), Normalize.from_stats([0.5] * 3, [0.5] * 3)])
    if args.data:
        dls = ImageDataLoaders.from_folder(args.data, valid_pct=0.1, seed=args.seed, **common)
    else:
        dls = ImageDataLoaders.from_folder(resolve_data_path("demo:cats"), train="train", valid="val", **common)

    def lite0(pretrained: bool = True):
        return zoo.create_model("efficientnet_lite0", pretrained=pretrained)

    learn = vision_learner(dls, lite0, n_out=dls.c, normalize=False, metrics=accuracy)
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(args.epochs, freeze_epochs=args.freeze_epochs)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started

    files = get_image_files(args.heldout)
    test = dls.test_dl(files, with_labels=True)
    with learn.no_bar():
        preds, targets = learn.get_preds(dl=test)
    heldout = (preds.argmax(-1) == targets).float().mean().item()
    print(json.dumps({"run": f"fastai vision_learner.fine_tune({args.epochs}, freeze_epochs={args.freeze_epochs})",
                      "data": args.data or "demo:cats", "train_images": len(dls.train_ds),
                      "size": args.size, "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1), "heldout_acc": round(heldout, 4),
                      "heldout_images": len(files), "load": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
