"""torchvision's classification models as ``torchvision/<name>``, wrapped for the classifier contract.

Torch-free: the specs come from torchvision_models.json; the wrapper
(zoo.models.torchvision_models) keeps torchvision's parameter names, so the
listed weight files load as they are.
"""

from __future__ import annotations

import zoo
from zoo.default_plugins._passthrough import passthrough_specs

DATA_FILE = "torchvision_models.json"


@zoo.hookimpl
def register_models(register):
    builder = "zoo.models.torchvision_models:torchvision_model"
    for spec in passthrough_specs(DATA_FILE, "torchvision", builder, layout="torchvision"):
        register(spec)
