"""The finetune defaults: the one place that ``zoo.finetune(...)`` and ``zoo finetune`` take them from.

:data:`FINETUNE_TRAIN_DEFAULTS` are the training settings that differ from
``zoo train``'s (:class:`zoo.train.TrainConfig`) for a pretrained backbone;
:class:`FinetuneOptions` holds the transfer options and their defaults.
docs/transfer.md states them, and tests/transfer/test_defaults.py checks that
the command line and the Python API agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The training defaults of a finetune, where they differ from zoo train's (TrainConfig):
# the one place that zoo.finetune(...) and `zoo finetune` both take them from.
FINETUNE_TRAIN_DEFAULTS: dict[str, Any] = {
    "optimizer": "adamw",
    "lr": 3e-3,
    "epochs": 20,
    "normalize": "model",  # the mean/std the pretrained weights were trained with
}


def finetune_config(**options: Any):
    """A :class:`zoo.train.TrainConfig` with the finetune defaults; keywords override them."""
    from zoo.train import TrainConfig

    return TrainConfig(**{**FINETUNE_TRAIN_DEFAULTS, **options})


@dataclass
class FinetuneOptions:
    """What ``zoo finetune`` adds to the training options."""

    head: str = "linear"  # "linear" or "mlp:512[,128]"
    head_dropout: float = 0.2
    freeze: str | int = "backbone"  # backbone | none | STAGE | N
    freeze_patterns: tuple[str, ...] = ()
    bn_policy: str = "frozen"  # frozen | train
    unfreeze_after: int | None = None  # epochs of head-only training before unfreezing starts
    unfreeze_every: int = 1  # epochs between unfreezing one more stage (top down)
    layer_decay: float = 0.5  # stage k below the head trains at lr * layer_decay**k
    pretrained: str | bool = True  # True: the spec's first weights; a string picks a tag
    weights: str | None = None  # a weight file or checkpoint directory instead
    encoder: str | None = None  # an autoencoder checkpoint whose encoder becomes the backbone
    cache_features: bool | None = None  # None: when exact (frozen backbone, no augmentation)
    feature_engine: str = "auto"  # auto | onnxruntime | torch: what computes the cached features
    keep_head: bool = False  # a checkpoint's own head stays when it fits the classes (LP-FT's second stage)

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
