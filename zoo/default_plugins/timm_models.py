"""Every timm architecture as ``timm/<name>`` (torch-free: specs from timm_models.json)."""

from __future__ import annotations

import zoo
from zoo.default_plugins._passthrough import passthrough_specs

DATA_FILE = "timm_models.json"


@zoo.hookimpl
def register_models(register):
    for spec in passthrough_specs(DATA_FILE, "timm", "zoo.models.timm_models:timm_model", layout="timm"):
        register(spec)
