"""Predicting with a checkpoint's PyTorch model, through the runtime's preprocessing.

The same :class:`zoo.runtime.Predictor` logic serves ONNX and PyTorch, so
``zoo predict`` on a checkpoint and on its exported ``.onnx`` decode, resize,
normalise and rank identically; only :meth:`run` differs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from zoo.export.source import forward_module, load_source
from zoo.export.validate import preprocessing_of
from zoo.runtime.model import Predictor


class TorchModel(Predictor):
    """A checkpoint (or zoo ``.safetensors`` file) ready to predict with PyTorch."""

    def __init__(self, source: str | os.PathLike, *, device: str = "auto", amp: bool | None = None) -> None:

        # A registry name predicts with its pretrained weights: without them the outputs mean nothing.
        model, config = load_source(source, pretrained=not Path(source).exists())
        self.config = config
        self.name = Path(source).name
        self.module, self.task = forward_module(model, config)
        from zoo.devices import autocast_choice, select_device

        self.device = select_device(device)
        self.amp = autocast_choice(self.device, amp)  # bf16 on CPUs with bfloat16 units, as in training
        self.prefetch = self.device.type == "cuda"
        self.module.to(self.device).eval()
        self.preprocessing = preprocessing_of(config)
        self.labels = [str(n) for n in config.get("class_names") or []] or None
        self.multi_label = bool(config.get("multi_label"))

    def budget_batch_size(self, memory_mb: float | None = None) -> int:
        """Images per batch that fit ``memory_mb`` of activations (:mod:`zoo.data.budget`)."""
        from zoo.data.budget import budget_batch_size

        p = self.preprocessing
        return budget_batch_size(self.module, (p.in_chans, p.height, p.width), memory_mb)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The model's raw output for a preprocessed ``(N, C, H, W)`` batch."""
        import torch

        from zoo.devices import autocast

        arr = self.preprocessing.check_array(batch)
        with torch.inference_mode(), autocast(self.device, *self.amp):
            return self.module(torch.from_numpy(arr).to(self.device)).float().cpu().numpy()


def load_predictor(source: str | os.PathLike, **options: Any) -> Predictor:
    """An ONNX file goes to the torch-free runtime; anything else is a checkpoint for PyTorch."""
    if str(source).lower().endswith(".onnx"):
        from zoo.runtime import load

        return load(source, **options)
    return TorchModel(source, device=options.get("device", "auto"), amp=options.get("amp"))
