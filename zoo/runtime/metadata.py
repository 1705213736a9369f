"""The ONNX ``metadata_props`` zoo writes, and reading them back.

Every value is a JSON string, so any ONNX consumer can read them:

=============  ==========================================================
class_names    ["cat", "dog"]
mean, std      [0.485, 0.456, 0.406]
input_size     [3, 224, 224]  (C, H, W the model was trained at)
architecture   {"name": "resnet34", "kwargs": {}, "num_classes": 2, "in_chans": 3}
task           "classification" (logits out) or "reconstruction" (images out)
multi_label    true when each output is a sigmoid of its own (several labels per image)
dynamic_axes   {"batch": true, "spatial": false}
zoo_version    "0.1.0"
zoo_config     the checkpoint's whole config.json
=============  ==========================================================
"""

from __future__ import annotations

import json
from typing import Any, Mapping

CLASS_NAMES = "class_names"
MEAN = "mean"
STD = "std"
INPUT_SIZE = "input_size"
ARCHITECTURE = "architecture"
TASK = "task"
MULTI_LABEL = "multi_label"
DYNAMIC_AXES = "dynamic_axes"
ZOO_VERSION = "zoo_version"
ZOO_CONFIG = "zoo_config"

INPUT_NAME = "input"
OUTPUT_NAMES = {"classification": "logits", "reconstruction": "reconstruction"}


def encode(values: Mapping[str, Any]) -> dict[str, str]:
    """Values -> JSON strings, as ``metadata_props`` stores them."""
    return {key: json.dumps(value) for key, value in values.items()}


def decode(props: Mapping[str, str]) -> dict[str, Any]:
    """JSON strings -> values; a value that is not JSON stays a string (files from elsewhere)."""
    out: dict[str, Any] = {}
    for key, raw in props.items():
        try:
            out[key] = json.loads(raw)
        except (TypeError, ValueError):
            out[key] = raw
    return out
