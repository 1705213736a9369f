"""Transfer learning: pretrained weights, freezing, heads, feature caching, autoencoder encoders.

* :mod:`zoo.transfer.weights` finds pretrained weights offline first and fits them to a model;
  :mod:`zoo.transfer.sources` are the built-in weight sources.
* :mod:`zoo.transfer.freeze` freezes stages or patterns, locks frozen BatchNorm in eval mode,
  and builds per-stage parameter groups with discriminative learning rates.
* :mod:`zoo.transfer.heads` swaps in a linear or MLP head.
* :mod:`zoo.transfer.features` caches backbone features when nothing below the head trains.
* :mod:`zoo.transfer.encoder` pretrains autoencoders and reuses their encoders.
* :mod:`zoo.transfer.finetune` ties them together for ``zoo finetune``.

Importing this package registers the checkpoint adapters that rebuild
finetuned models (an MLP head) in :data:`zoo.checkpoint.ADAPTERS`.
"""

from __future__ import annotations

from zoo.checkpoint import ADAPTERS

ADAPTERS.setdefault("head", "zoo.transfer.heads:rebuild_head")
