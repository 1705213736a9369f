"""Transfer learning: pretrained weights, freezing, heads, feature caching, autoencoder encoders.

* :mod:`zoo.pretrained` finds pretrained weights offline first and fits them to a model;
  :mod:`zoo.pretrained.sources` are the built-in weight sources.
* :mod:`zoo.transfer.freeze` freezes stages or patterns, locks frozen BatchNorm in eval mode,
  and builds per-stage parameter groups with discriminative learning rates.
* :mod:`zoo.transfer.heads` swaps in a linear or MLP head.
* :mod:`zoo.transfer.features` caches backbone features when nothing below the head trains.
* :mod:`zoo.transfer.encoder` pretrains autoencoders and reuses their encoders.
* :mod:`zoo.transfer.finetune` ties them together for ``zoo finetune`` and ``zoo.finetune(...)``,
  with the defaults of :mod:`zoo.transfer.defaults` (the one place both take them from).

:data:`zoo.checkpoint.ADAPTERS` names :func:`zoo.transfer.heads.rebuild_head`, which
rebuilds a finetuned model's swapped head from its checkpoint config.
"""

from __future__ import annotations
