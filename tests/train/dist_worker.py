"""Run by torchrun from test_distributed.py (not a test module).

    torchrun ... dist_worker.py DATA OUT WEIGHTS EPOCHS BATCH [--die-at STEP]

Trains ``net`` with the Trainer and saves each rank's final weights to
WEIGHTS/rank{R}.pt, so the test can compare the ranks. ``--die-at STEP``
makes rank 1 exit abruptly at that training step of epoch 2.
"""

from __future__ import annotations

import os
import sys

import torch

from zoo.data import load_image_data
from zoo.train import Trainer


def main(argv: list[str]) -> None:
    data_dir, out, weights, epochs, batch = argv[:5]
    die_at = int(argv[argv.index("--die-at") + 1]) if "--die-at" in argv else None
    torch.set_num_threads(1)
    data = load_image_data(data_dir, (3, 32, 32))
    trainer = Trainer("net", data, out=out, epochs=int(epochs), batch_size=int(batch), lr=0.05, progress=False,
                      plot=False)
    if die_at is not None and trainer.dist.rank == 1:
        steps_per_epoch = -(-len(data.train) // (2 * int(batch)))
        target = steps_per_epoch + die_at  # a step inside epoch 2
        calls = {"n": 0}

        def die(module, inputs):
            if module.training:
                calls["n"] += 1
                if calls["n"] == target:
                    os._exit(3)  # a crash: no cleanup, no message

        trainer.model.register_forward_pre_hook(die)
    result = trainer.fit()
    os.makedirs(weights, exist_ok=True)
    torch.save(result.model.state_dict(), os.path.join(weights, f"rank{trainer.dist.rank}.pt"))


if __name__ == "__main__":
    main(sys.argv[1:])
