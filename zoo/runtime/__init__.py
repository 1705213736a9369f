"""Torch-free inference for exported models: onnxruntime, numpy and pillow only.

    >>> from zoo import runtime
    >>> model = runtime.load("model.onnx")            # preprocessing + labels from its metadata
    >>> model.predict(["cat.jpg", "photos/"], top_k=3)  # files and folders, batched
    >>> model.predict_array(batch)                      # (N, C, H, W) float32, preprocessed

Nothing in this package imports the rest of zoo (errors fall back to a plain
``Exception`` base without it), so the folder can be copied into a service
that has only the three libraries; see docs/deploy.md.
"""

from __future__ import annotations

from .errors import RuntimeInputError
from .model import (
    OnnxModel,
    Prediction,
    Predictor,
    choose_providers,
    load,
    open_session,
    read_labels,
    softmax,
)
from .preprocess import (
    IMAGE_SUFFIXES,
    ImageReadError,
    Preprocessing,
    list_images,
    open_image,
    read_image,
)
from .skips import SkipReport

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageReadError",
    "OnnxModel",
    "Prediction",
    "Predictor",
    "Preprocessing",
    "RuntimeInputError",
    "SkipReport",
    "choose_providers",
    "list_images",
    "load",
    "open_image",
    "open_session",
    "read_image",
    "read_labels",
    "softmax",
]
