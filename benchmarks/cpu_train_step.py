"""The CPU training step under each setting, in one run: layout, bfloat16 autocast and threads.

For each model and size, a training step (forward, cross-entropy, backward,
SGD step) on a random batch is timed under:

* ``default``: today's default on CPU (float32, channels-last);
* ``contiguous``: float32, NCHW;
* ``bf16``: ``torch.autocast("cpu", torch.bfloat16)`` with channels-last;
* ``1 thread``: the default layout with ``torch.set_num_threads(1)``.

Settings alternate within each round so they see the same load; medians of
the rounds are reported as images/s and as ratios to ``default``, with the
model's multiply-adds per image (the figure zoo's thread default uses) and
``uptime``'s load.

    python benchmarks/cpu_train_step.py --models net:32,resnet18:160,resnet34:224,timm/efficientnet_lite0:224
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="net:32,cifar8_resnet:32,resnet18:160,resnet34:224,"
                                            "timm/efficientnet_lite0:224")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, help="threads for every setting but '1 thread' [torch's default]")
    parser.add_argument("--settings", default="default,contiguous,bf16,1 thread", help="which settings to time")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    import zoo
    from zoo.data.budget import probe

    cores = torch.get_num_threads()
    report = {"cores": cores, "batch": args.batch, "load_before": os.getloadavg()}
    print(f"{cores} threads by default, batch {args.batch}, load {os.getloadavg()}", flush=True)
    for item in args.models.split(","):
        name, size = item.rsplit(":", 1)
        size = int(size)
        torch.manual_seed(0)
        model = zoo.create_model(name, num_classes=10, pretrained=False)
        macs = probe(model, (3, size, size)).macs
        batch = args.batch if size <= 64 else max(8, args.batch // 2)
        x = torch.randn(batch, 3, size, size)
        y = torch.randint(0, 10, (batch,))
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)

        def steps(layout, bf16, threads):
            torch.set_num_threads(threads)
            model.to(memory_format=layout)
            xb = x.contiguous(memory_format=layout)
            ctx = torch.autocast("cpu", torch.bfloat16) if bf16 else contextlib.nullcontext()
            for i in range(args.steps + 1):
                if i == 1:
                    start = time.perf_counter()  # the first step warms oneDNN's kernels for this layout
                with ctx:
                    loss = torch.nn.functional.cross_entropy(model(xb), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            torch.set_num_threads(cores)
            return batch * args.steps / (time.perf_counter() - start)

        settings = {"default": (torch.channels_last, False, cores), "contiguous": (torch.contiguous_format, False, cores),
                    "bf16": (torch.channels_last, True, cores), "1 thread": (torch.channels_last, False, 1)}
        settings = {k: v for k, v in settings.items() if k in args.settings.split(",")}
        rates = {k: [] for k in settings}
        for _ in range(args.rounds):
            for key, setting in settings.items():
                rates[key].append(steps(*setting))
        med = {k: statistics.median(v) for k, v in rates.items()}
        row = {"macs_per_image": macs, "batch": batch,
               **{k: {"img_s": round(v, 1), "vs_default": round(v / med["default"], 2)} for k, v in med.items()},
               "load": os.getloadavg()}
        report[item] = row
        print(f"{item}: {macs / 1e6:,.1f} MMAC/img; " + "; ".join(
            f"{k} {row[k]['img_s']} img/s ({row[k]['vs_default']}x)" for k in settings) + f"; load {row['load']}",
            flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
