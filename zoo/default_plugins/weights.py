"""Built-in weight sources and the embedded default backbone (torch-free).

Sources are tried in ascending priority: weights shipped inside a package,
the torch hub cache, the Hugging Face hub cache, and last a download, which
happens only when the network is allowed (see :mod:`zoo.pretrained.sources`).
"""

from __future__ import annotations

import zoo
from zoo.extensions import WeightSource
from zoo.registry import ModelSpec, PretrainedWeights

CIFAR_MEAN = (0.4915, 0.4823, 0.4468)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
CIFAR8_CLASSES = ("airplane", "automobile", "bird", "deer", "frog", "horse", "ship", "truck")


@zoo.hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="cifar8_resnet",
            builder="zoo.transfer.backbone:cifar8_resnet",
            family="resnet",
            tags=("cifar", "pretrained", "transfer"),
            input_size=(3, 32, 32),
            num_classes=8,
            mean=CIFAR_MEAN,
            std=CIFAR_STD,
            first_conv="stem.0",
            classifier="fc",
            paper="He et al.: Deep Residual Learning for Image Recognition",
            year=2016,
            params=869_032,
            weights=(
                PretrainedWeights(
                    tag="cifar8",
                    package_file="zoo:assets/backbones/cifar8_resnet.safetensors",
                    num_classes=8,
                    mean=CIFAR_MEAN,
                    std=CIFAR_STD,
                    class_names=CIFAR8_CLASSES,
                    description="pretrained by zoo on the 8 CIFAR-10 classes other than cat and dog"
                    " (benchmarks/pretrain_backbone.py)",
                ),
            ),
            description="small 32x32 ResNet (stem + 3 residual stages), shipped pretrained for offline finetuning",
        )
    )


# (name, find function in zoo.pretrained.sources, priority, description): offline first.
BUILTIN_SOURCES = (
    ("package", "find_package_file", 10, "weights shipped inside an installed package (PretrainedWeights.package_file)"),
    ("torch-hub-cache", "find_torch_hub_cache", 20, "$TORCH_HOME/hub/checkpoints/<file name from the weight URL>"),
    ("hf-cache", "find_hf_cache", 30, "$HF_HOME/hub/models--<org>--<name>/snapshots/<rev>/ (no network)"),
    ("download", "download", 100, "download from the URL or the Hugging Face hub, only when the network is allowed"),
)


@zoo.hookimpl
def register_weight_sources(register):
    for name, function, priority, description in BUILTIN_SOURCES:
        register(WeightSource(name=name, find=f"zoo.pretrained.sources:{function}", priority=priority,
                              description=description))
