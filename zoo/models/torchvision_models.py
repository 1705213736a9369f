"""torchvision's classification models under the classifier contract.

:class:`TorchvisionClassifier` adopts the submodules of a torchvision model
under their own names, so its ``state_dict`` keys are exactly torchvision's
(pretrained files load without renaming; weight layout ``"torchvision"``).
What it adds is the split timm models have: ``forward_features`` runs the
trunk (the conv layers, or the transformer encoder), ``forward_head`` pools,
flattens, runs the classifier MLP up to its last layer (the pre-logits) and
then the last layer. The recipe for each torchvision class is a row of data.

Two torchvision quirks: GoogLeNet and Inception v3 are built without their
auxiliary heads; their pretrained weights expect inputs normalised with
mean = std = 0.5 (torchvision's ``transform_input`` does that conversion; the
weight descriptions carry those values instead). SqueezeNet's classifier is a
1x1 conv followed by ReLU and pooling, so its pre-logits are the pooled
features that conv would see, not an exact input of the final layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from zoo.models._base import linear_head


@dataclass(frozen=True)
class _Recipe:
    trunk: tuple[str, ...]  # children run in order by forward_features
    head: str  # the child holding the classifier (a Linear, or a Sequential ending in one)
    pool: str = "avgpool"  # a child's name, or "adaptive", "mean", "token", "none"
    flatten: bool = True
    dropout: str = ""  # a Dropout child applied between pooling and the classifier
    special: str = ""  # "densenet", "vit", "squeezenet": one extra step each


_GOOGLENET_TRUNK = (
    "conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
    "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
    "inception5a", "inception5b",
)
_INCEPTION3_TRUNK = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
    "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
    "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c",
)

# torchvision class name -> how to split it into trunk and head
_RECIPES: dict[str, _Recipe] = {
    "AlexNet": _Recipe(("features",), "classifier"),
    "VGG": _Recipe(("features",), "classifier"),
    "GoogLeNet": _Recipe(_GOOGLENET_TRUNK, "fc", dropout="dropout"),
    "Inception3": _Recipe(_INCEPTION3_TRUNK, "fc", dropout="dropout"),
    "ResNet": _Recipe(("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"), "fc"),
    "DenseNet": _Recipe(("features",), "classifier", pool="adaptive", special="densenet"),
    "EfficientNet": _Recipe(("features",), "classifier"),
    "MobileNetV2": _Recipe(("features",), "classifier", pool="adaptive"),
    "MobileNetV3": _Recipe(("features",), "classifier"),
    "ConvNeXt": _Recipe(("features",), "classifier", flatten=False),  # its classifier starts with LayerNorm2d, Flatten
    "RegNet": _Recipe(("stem", "trunk_output"), "fc"),
    "ShuffleNetV2": _Recipe(("conv1", "maxpool", "stage2", "stage3", "stage4", "conv5"), "fc", pool="mean"),
    "MNASNet": _Recipe(("layers",), "classifier", pool="mean"),
    "SqueezeNet": _Recipe(("features",), "classifier", pool="none", special="squeezenet"),
    "SwinTransformer": _Recipe(("features", "norm", "permute"), "head"),
    "MaxVit": _Recipe(("stem", "blocks"), "classifier", pool="none", flatten=False),  # pooling is inside its classifier
    "VisionTransformer": _Recipe((), "heads", pool="token", special="vit"),
}

# Non-module attributes the recipes read from the original model.
_ATTRS = ("transform_input", "patch_size", "image_size", "hidden_dim")


class TorchvisionClassifier(nn.Module):
    """A torchvision classification model with ``forward_features``/``forward_head``."""

    def __init__(self, model: nn.Module, arch: str = "") -> None:
        super().__init__()
        kind = type(model).__name__
        if kind not in _RECIPES:
            raise ValueError(f"no trunk/head recipe for torchvision class {kind}")
        self.arch = arch or kind.lower()
        self._recipe = _RECIPES[kind]
        for name, child in model.named_children():
            if child is not None:
                self.add_module(name, child)
        for name, param in model.named_parameters(recurse=False):
            self.register_parameter(name, param)
        for name, buf in model.named_buffers(recurse=False):
            self.register_buffer(name, buf)
        for attr in _ATTRS:
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))
        last = self._last_layer()
        self.num_features = last.in_channels if isinstance(last, nn.Conv2d) else last.in_features
        self.num_classes = last.out_channels if isinstance(last, nn.Conv2d) else last.out_features

    # -- where the classifier is ----------------------------------------------

    def _head_modules(self) -> list[nn.Module]:
        head = getattr(self, self._recipe.head)
        return list(head.children()) if isinstance(head, nn.Sequential) else [head]

    def _last_layer(self) -> nn.Module:
        # SqueezeNet's final layer is the 1x1 conv before its ReLU and pooling.
        mods = self._head_modules()
        return mods[1] if self._recipe.special == "squeezenet" else mods[-1]

    @property
    def classifier_path(self) -> str:
        """Dotted name of the last layer (what ``reset_classifier`` replaces)."""
        head = getattr(self, self._recipe.head)
        if not isinstance(head, nn.Sequential):
            return self._recipe.head
        names = [n for n, _ in head.named_children()]
        return f"{self._recipe.head}.{names[1] if self._recipe.special == 'squeezenet' else names[-1]}"

    @property
    def head_hidden_size(self) -> int:
        """Width of the pre-logits, under timm's name for it."""
        return self.num_features

    def get_classifier(self) -> nn.Module:
        """The last layer of the classifier."""
        return self.get_submodule(self.classifier_path)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last layer with a fresh one for ``num_classes`` (0: identity)."""
        self.num_classes = num_classes
        if self._recipe.special == "squeezenet" and num_classes > 0:
            ref = next(self.parameters())
            new: nn.Module = nn.Conv2d(self.num_features, num_classes, kernel_size=1).to(ref.device, ref.dtype)
        else:
            new = linear_head(self.num_features, num_classes, like=self)
        _set_submodule(self, self.classifier_path, new)

    # -- forward ---------------------------------------------------------------

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk: unpooled feature maps (N, C, H, W), or tokens (N, L, D) for ViT."""
        if getattr(self, "transform_input", False):
            x = _transform_input(x)
        if self._recipe.special == "vit":
            return self._vit_tokens(x)
        for name in self._recipe.trunk:
            part = getattr(self, name)
            if isinstance(part, nn.ModuleList):  # MaxViT's blocks
                for block in part:
                    x = block(x)
            else:
                x = part(x)
        if self._recipe.special == "densenet":
            x = F.relu(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool, flatten, the classifier's leading layers (pre-logits), then its last layer."""
        recipe = self._recipe
        mods = self._head_modules()
        if recipe.special == "squeezenet":
            x = mods[0](x)
            if pre_logits:
                return F.adaptive_avg_pool2d(x, 1).flatten(1)
            for m in mods[1:]:
                x = m(x)
            return x.flatten(1)
        if recipe.pool == "adaptive":
            x = F.adaptive_avg_pool2d(x, 1)
        elif recipe.pool == "mean":
            x = x.mean((2, 3))
        elif recipe.pool == "token":
            x = x[:, 0]
        elif recipe.pool != "none":
            x = getattr(self, recipe.pool)(x)
        if recipe.flatten:
            x = x.flatten(1)
        if recipe.dropout:
            x = getattr(self, recipe.dropout)(x)
        for m in mods[:-1]:
            x = m(x)
        return x if pre_logits else mods[-1](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def _vit_tokens(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        p = self.patch_size
        torch._assert(h == self.image_size and w == self.image_size, f"expected {self.image_size}x{self.image_size} input")
        x = self.conv_proj(x).reshape(n, self.hidden_dim, (h // p) * (w // p)).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        return self.encoder(x)


def _transform_input(x: torch.Tensor) -> torch.Tensor:
    # torchvision's conversion from ImageNet normalisation to mean = std = 0.5.
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * std + mean - 0.5) / 0.5


def _set_submodule(root: nn.Module, path: str, new: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, new)


def find_first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """The name and module of the first ``Conv2d`` in registration order (the stem in every torchvision model)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ValueError("model has no Conv2d to adapt to in_chans")


def _adapt_in_chans(model: nn.Module, in_chans: int) -> None:
    # torchvision builders know only 3 channels: swap the first conv for a fresh one.
    name, conv = find_first_conv(model)
    if conv.in_channels == in_chans:
        return
    new = nn.Conv2d(
        in_chans, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
        dilation=conv.dilation, bias=conv.bias is not None,
    )
    _set_submodule(model, name, new)


def torchvision_model(arch: str, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> TorchvisionClassifier:
    """Build torchvision's ``arch`` (no weights) and wrap it; ``kwargs`` go to torchvision's builder."""
    from torchvision import models

    try:
        builder = models.get_model_builder(arch)
    except ValueError:
        raise ValueError(f"torchvision has no model {arch!r}") from None
    if arch in ("googlenet", "inception_v3"):
        # No auxiliary heads, and torchvision's own init (it warns when left unset).
        kwargs = {"aux_logits": False, "init_weights": True, **kwargs}
    model = builder(weights=None, num_classes=max(num_classes, 1), **kwargs)
    if in_chans != 3:
        _adapt_in_chans(model, in_chans)
        if hasattr(model, "transform_input"):
            model.transform_input = False  # the 3-channel conversion cannot apply
    wrapped = TorchvisionClassifier(model, arch)
    if num_classes == 0:
        wrapped.reset_classifier(0)
    return wrapped


def alexnet(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> TorchvisionClassifier:
    """AlexNet (Krizhevsky, Sutskever, Hinton 2012), torchvision's single-tower version."""
    return torchvision_model("alexnet", num_classes, in_chans, **kwargs)


def vgg11(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> TorchvisionClassifier:
    """VGG-11 (configuration A)."""
    return torchvision_model("vgg11", num_classes, in_chans, **kwargs)


def vgg11_bn(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> TorchvisionClassifier:
    """VGG-11 with batch norm."""
    return torchvision_model("vgg11_bn", num_classes, in_chans, **kwargs)


def vgg13(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> TorchvisionClassifier:
    """VGG-13 (configuration B)."""
    return torchvision_model("vgg13", num_classes, in_chans, **kwargs)


def vgg13_bn(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> TorchvisionClassifier:
    """VGG-13 with batch norm."""
    return torchvision_model("vgg13_bn", num_classes, in_chans, **kwargs)


def vgg16(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> TorchvisionClassifier:
    """VGG-16 (configuration D)."""
    return torchvision_model("vgg16", num_classes, in_chans, **kwargs)


def vgg16_bn(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> TorchvisionClassifier:
    """VGG-16 with batch norm."""
    return torchvision_model("vgg16_bn", num_classes, in_chans, **kwargs)


def vgg19(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> TorchvisionClassifier:
    """VGG-19 (configuration E)."""
    return torchvision_model("vgg19", num_classes, in_chans, **kwargs)


def vgg19_bn(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> TorchvisionClassifier:
    """VGG-19 with batch norm."""
    return torchvision_model("vgg19_bn", num_classes, in_chans, **kwargs)


def googlenet(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> TorchvisionClassifier:
    """GoogLeNet / Inception v1 (Szegedy et al. 2015), auxiliary heads off."""
    return torchvision_model("googlenet", num_classes, in_chans, **kwargs)
