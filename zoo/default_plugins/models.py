"""Built-in architectures (torch-free: specs only, builders load on demand)."""

from __future__ import annotations

import zoo
from zoo.registry import ModelSpec

CIFAR_BOOK_MEAN = (0.4915, 0.4823, 0.4468)
CIFAR_BOOK_STD = (0.2470, 0.2435, 0.2616)
BOOK = "Stevens, Antiga, Viehmann: Deep Learning with PyTorch, ch. 8"


@zoo.hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="net",
            builder="zoo.models.lecture:net",
            family="lecture",
            tags=("lecture", "cifar"),
            input_size=(3, 32, 32),
            num_classes=2,
            mean=CIFAR_BOOK_MEAN,
            std=CIFAR_BOOK_STD,
            first_conv="conv1",
            classifier="fc2",
            paper=BOOK,
            year=2020,
            params=18_090,
            description="conv 3->16, conv 16->8, fc 512->32->2, tanh and max-pooling",
        )
    )
