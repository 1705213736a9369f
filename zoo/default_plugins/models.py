"""Built-in architectures (torch-free: specs only, builders load on demand).

Every figure here is data checked by tests/models against the libraries:
parameter counts at the default class count, torchvision weight file names
and addresses (from torchvision's weight enums), timm hub ids (from timm's
default pretrained configs). Nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

import zoo
from zoo.registry import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, PretrainedWeights

CIFAR_BOOK_MEAN = (0.4915, 0.4823, 0.4468)
CIFAR_BOOK_STD = (0.2470, 0.2435, 0.2616)
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)
HALF = (0.5, 0.5, 0.5)

BOOK = "Stevens, Antiga, Viehmann: Deep Learning with PyTorch, ch. 8"
I2DL = "Introduction to Deep Learning (I2DL), TU Munich"
LENET = "LeCun, Bottou, Bengio, Haffner: Gradient-Based Learning Applied to Document Recognition"
ALEXNET = "Krizhevsky, Sutskever, Hinton: ImageNet Classification with Deep Convolutional Neural Networks"
VGG = "Simonyan, Zisserman: Very Deep Convolutional Networks for Large-Scale Image Recognition"
NIN = "Lin, Chen, Yan: Network In Network"
GOOGLENET = "Szegedy et al.: Going Deeper with Convolutions"
RESNET = "He, Zhang, Ren, Sun: Deep Residual Learning for Image Recognition"
VIT = "Dosovitskiy et al.: An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale"

TV_URL = "https://download.pytorch.org/models/"


def _tv(filename: str, tag: str = "tv_in1k", mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD, description: str = "torchvision IMAGENET1K_V1") -> PretrainedWeights:
    """torchvision's ImageNet weights: a file in $TORCH_HOME/hub/checkpoints, keys as torchvision names them."""
    return PretrainedWeights(
        tag=tag, url=TV_URL + filename, filename=filename, layout="torchvision",
        num_classes=1000, mean=mean, std=std, description=description,
    )


def _timm(hf_hub_id: str, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD) -> PretrainedWeights:
    """timm's default pretrained weights on the Hugging Face hub."""
    return PretrainedWeights(
        tag=hf_hub_id.split(".", 1)[1], hf_hub_id=hf_hub_id, layout="timm",
        num_classes=1000, mean=mean, std=std, description=f"timm {hf_hub_id}",
    )


def _spec(name: str, module: str, **fields: Any) -> ModelSpec:
    if fields.get("weights"):
        fields["tags"] = (*fields.get("tags", ()), "pretrained")
    return ModelSpec(name=name, builder=f"zoo.models.{module}:{name}", **fields)


def _lecture() -> list[ModelSpec]:
    common = dict(
        family="lecture", input_size=(3, 32, 32), num_classes=2, mean=CIFAR_BOOK_MEAN, std=CIFAR_BOOK_STD,
        first_conv="conv1", classifier="fc2", paper=BOOK, year=2020,
    )
    rows = [
        ("net", (), 18_090, "conv 3->16, conv 16->8, fc 512->32->2, tanh and max-pooling"),
        ("net_width", ("netwidth",), 38_386, "Net with n_chans1=32 channels in the first conv"),
        ("net_dropout", ("netdropout",), 38_386, "NetWidth with Dropout2d(p=0.4) after each conv block"),
        ("net_batchnorm", ("netbatchnorm",), 38_482, "NetWidth with BatchNorm2d before each tanh"),
        ("net_depth", ("netdepth",), 16_130, "three conv layers, relu"),
        ("net_res", ("netres",), 16_130, "NetDepth with a skip connection around the third conv"),
        ("net_res_deep", ("netresdeep",), 75_810,
         "100 conv+BN+relu residual blocks sharing one set of weights as published (shared_blocks=False: independent)"),
    ]
    return [
        _spec(name, "lecture", aliases=aliases, tags=("lecture", "book", "cifar"), params=params,
              description=desc, **common)
        for name, aliases, params, desc in rows
    ]


def _classic_cnns() -> list[ModelSpec]:
    mnist = dict(family="lenet", input_size=(1, 32, 32), num_classes=10, mean=MNIST_MEAN, std=MNIST_STD,
                 first_conv="features.0", classifier="fc3", paper=LENET, year=1998, params=61_706)
    return [
        _spec("lenet5", "lenet", aliases=("lenet",), tags=("mnist", "cnn"),
              description="conv 6@5x5, avg-pool, conv 16@5x5, avg-pool, fc 120-84-10, tanh", **mnist),
        _spec("lenet5_28", "lenet", aliases=("lenet5_mnist",), tags=("mnist", "cnn"),
              description="LeNet-5 for 1x28x28 input (first conv padded by 2)", **{**mnist, "input_size": (1, 28, 28)}),
        _spec("nin", "nin", family="nin", aliases=("network_in_network",), tags=("imagenet", "cnn"),
              first_conv="features.0.0", classifier="classifier", paper=NIN, year=2014, params=7_595_176,
              description="NiN blocks (conv + two 1x1 convs), global average pooling, no dense layer;"
                          " the last 1x1 conv (one map per class) is the classifier"),
        _spec("keras_cnn", "keras_cnn", family="keras", tags=("lecture", "cnn"), input_size=(3, 64, 64),
              num_classes=2, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), first_conv="features.0", classifier="fc2",
              paper="Course lecture: a Keras CNN for cats vs dogs", params=813_346,
              description="conv 32 3x3 relu, max-pool, conv 32 3x3 relu, max-pool, dense 128, dense 2"
                          " (inputs scaled to [0, 1], as Keras' rescale=1/255)"),
    ]


def _i2dl() -> list[ModelSpec]:
    ae = dict(family="autoencoder", num_classes=0, classifier="head", paper=f"{I2DL}: autoencoder exercise")
    mnist = dict(input_size=(1, 28, 28), mean=MNIST_MEAN, std=MNIST_STD)
    cifar = dict(input_size=(3, 32, 32), mean=CIFAR_BOOK_MEAN, std=CIFAR_BOOK_STD)
    tags = ("autoencoder", "i2dl")
    note = "; num_classes > 0 builds an EncoderClassifier on its encoder"
    return [
        _spec("i2dl_mlp", "mlp", family="mlp", aliases=("two_layer_net",), tags=("i2dl", "cifar"), num_classes=10,
              classifier="fc", paper=f"{I2DL}: two-layer net exercise", params=308_310,
              description="flatten, Linear 3072->100, ReLU, Linear 100->10 (hidden_size, num_layers 2-4,"
                          " drop_rate, batchnorm configurable)", **cifar),
        _spec("ae_mlp_28", "autoencoder", tags=(*tags, "mnist"), params=438_180,
              description="MLP autoencoder 784-256-64-20 and back" + note, **ae, **mnist),
        _spec("ae_mlp_32", "autoencoder", tags=(*tags, "cifar"), params=3_445_312,
              description="MLP autoencoder 3072-512-256-64 and back" + note, **ae, **cifar),
        _spec("ae_conv_28", "autoencoder", tags=(*tags, "mnist"), first_conv="encoder.0", params=73_877,
              description="conv autoencoder, stride-2 convs 16, 32, code of 20" + note, **ae, **mnist),
        _spec("ae_conv_32", "autoencoder", tags=(*tags, "cifar"), first_conv="encoder.0", params=450_627,
              description="conv autoencoder, stride-2 convs 32, 64, 128, code of 64" + note, **ae, **cifar),
    ]


def _torchvision() -> list[ModelSpec]:
    imagenet = dict(tags=("imagenet", "cnn"), first_conv="features.0", classifier="classifier.6")
    vgg = [
        ("vgg11", "vgg11-8a719046.pth", 132_863_336), ("vgg11_bn", "vgg11_bn-6002323d.pth", 132_868_840),
        ("vgg13", "vgg13-19584684.pth", 133_047_848), ("vgg13_bn", "vgg13_bn-abd245e5.pth", 133_053_736),
        ("vgg16", "vgg16-397923af.pth", 138_357_544), ("vgg16_bn", "vgg16_bn-6c64b313.pth", 138_365_992),
        ("vgg19", "vgg19-dcbb9e9d.pth", 143_667_240), ("vgg19_bn", "vgg19_bn-c79401a0.pth", 143_678_248),
    ]
    specs = [
        _spec("alexnet", "torchvision_models", family="alexnet", paper=ALEXNET, year=2012, params=61_100_840,
              weights=(_tv("alexnet-owt-7be5be79.pth"),),
              description="5 conv + 3 dense layers, ReLU, dropout (torchvision's single-GPU variant)", **imagenet),
    ]
    for name, filename, params in vgg:
        depth = name[3:5]
        specs.append(
            _spec(name, "torchvision_models", family="vgg", paper=VGG, year=2015, params=params,
                  weights=(_tv(filename),), description=f"VGG-{depth}: 3x3 convs in 5 stages, 3 dense layers"
                  + (", batch norm" if name.endswith("_bn") else ""), **imagenet)
        )
    specs.append(
        _spec("googlenet", "torchvision_models", family="googlenet", aliases=("inception_v1",),
              tags=("imagenet", "cnn"), first_conv="conv1.conv", classifier="fc", paper=GOOGLENET, year=2015,
              params=6_624_904,
              # torchvision converts inputs to mean=std=0.5 for these weights (transform_input); we state it instead.
              weights=(_tv("googlenet-1378be20.pth", mean=HALF, std=HALF,
                           description="torchvision IMAGENET1K_V1 (expects inputs normalised with mean=std=0.5)"),),
              description="Inception v1, 9 inception modules, auxiliary heads off")
    )
    return specs


def _timm_specs() -> list[ModelSpec]:
    resnet = dict(family="resnet", tags=("imagenet", "cnn"), first_conv="conv1", classifier="fc", paper=RESNET, year=2016)
    rows = [
        ("resnet18", 11_689_512, "resnet18-f37072fd.pth", None, "resnet18.a1_in1k", "basic blocks [2, 2, 2, 2]"),
        ("resnet34", 21_797_672, "resnet34-b627a593.pth", None, "resnet34.a1_in1k", "basic blocks [3, 4, 6, 3]"),
        ("resnet50", 25_557_032, "resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth", "resnet50.a1_in1k",
         "bottleneck blocks [3, 4, 6, 3]"),
        ("resnet101", 44_549_160, "resnet101-63fe2227.pth", "resnet101-cd907fc2.pth", "resnet101.a1h_in1k",
         "bottleneck blocks [3, 4, 23, 3]"),
        ("resnet152", 60_192_808, "resnet152-394f9c45.pth", "resnet152-f82ba261.pth", "resnet152.a1h_in1k",
         "bottleneck blocks [3, 8, 36, 3]"),
    ]
    specs = []
    for name, params, tv1, tv2, hub, desc in rows:
        weights = [_tv(tv1)]
        if tv2:
            weights.append(_tv(tv2, tag="tv2_in1k", description="torchvision IMAGENET1K_V2"))
        weights.append(_timm(f"timm/{hub}"))
        specs.append(_spec(name, "timm_models", params=params, weights=tuple(weights), description=desc, **resnet))
    vit = dict(family="vit", tags=("imagenet", "transformer"), first_conv="patch_embed.proj", classifier="head",
               paper=VIT, year=2021, mean=HALF, std=HALF)
    for name, alias, params, hub, desc in [
        ("vit_tiny_patch16_224", "vit_ti16", 5_717_416, "augreg_in21k_ft_in1k", "ViT-Ti/16: width 192, depth 12, 3 heads"),
        ("vit_small_patch16_224", "vit_s16", 22_050_664, "augreg_in21k_ft_in1k", "ViT-S/16: width 384, depth 12, 6 heads"),
        ("vit_base_patch16_224", "vit_b16", 86_567_656, "augreg2_in21k_ft_in1k", "ViT-B/16: width 768, depth 12, 12 heads"),
    ]:
        specs.append(_spec(name, "timm_models", aliases=(alias,), params=params,
                           weights=(_timm(f"timm/{name}.{hub}", HALF, HALF),), description=desc, **vit))
    specs.append(
        _spec("vit_cifar_patch4_32", "timm_models", family="vit", tags=("cifar", "transformer"), input_size=(3, 32, 32),
              num_classes=10, mean=CIFAR_BOOK_MEAN, std=CIFAR_BOOK_STD, first_conv="patch_embed.proj",
              classifier="head", paper=VIT, year=2021, params=1_806_538,
              description="a small ViT for 32x32: 4x4 patches, width 192, depth 6, 3 heads, MLP ratio 2")
    )
    return specs


def builtin_specs() -> list[ModelSpec]:
    """Every built-in architecture's spec, in the order they are registered."""
    return [*_lecture(), *_classic_cnns(), *_i2dl(), *_torchvision(), *_timm_specs()]


@zoo.hookimpl
def register_models(register):
    for spec in builtin_specs():
        register(spec)
