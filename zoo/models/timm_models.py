"""ResNet and ViT from timm, which already follow the classifier contract.

timm's ResNets use torchvision's parameter names, so torchvision's ResNet
weight files load into them unchanged. Nothing here downloads: models are
built with ``pretrained=False`` and weights are the transfer module's job.

For the built-in ResNets and ViTs ``num_features`` is the pre-logits width,
as the zoo's contract says. Among the ``timm/*`` pass-throughs, models whose
head has its own hidden layer (MobileNetV3, HGNet, FasterNet, MambaOut, ...)
keep timm's meaning: ``num_features`` is the trunk's width and the pre-logits
are ``head_hidden_size`` wide. Every zoo model has ``head_hidden_size``, so
code that sizes a new head on pre-logits should read that.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def timm_model(arch: str, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """timm's ``arch`` without weights; ``kwargs`` go to ``timm.create_model`` (drop_rate, img_size, ...)."""
    import timm

    if not timm.is_model(arch):
        raise ValueError(f"timm has no model {arch!r}")
    return timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)


def resnet18(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """ResNet-18 (He et al. 2016), basic blocks [2, 2, 2, 2]."""
    return timm_model("resnet18", num_classes, in_chans, **kwargs)


def resnet34(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """ResNet-34, basic blocks [3, 4, 6, 3]."""
    return timm_model("resnet34", num_classes, in_chans, **kwargs)


def resnet50(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """ResNet-50, bottleneck blocks [3, 4, 6, 3]."""
    return timm_model("resnet50", num_classes, in_chans, **kwargs)


def resnet101(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """ResNet-101, bottleneck blocks [3, 4, 23, 3]."""
    return timm_model("resnet101", num_classes, in_chans, **kwargs)


def resnet152(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """ResNet-152, bottleneck blocks [3, 8, 36, 3]."""
    return timm_model("resnet152", num_classes, in_chans, **kwargs)


def vit_tiny_patch16_224(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """ViT-Ti/16 at 224x224 (width 192, depth 12, 3 heads)."""
    return timm_model("vit_tiny_patch16_224", num_classes, in_chans, **kwargs)


def vit_small_patch16_224(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """ViT-S/16 at 224x224 (width 384, depth 12, 6 heads)."""
    return timm_model("vit_small_patch16_224", num_classes, in_chans, **kwargs)


def vit_base_patch16_224(num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """ViT-B/16 at 224x224 (Dosovitskiy et al. 2021; width 768, depth 12, 12 heads)."""
    return timm_model("vit_base_patch16_224", num_classes, in_chans, **kwargs)


def vit_cifar_patch4_32(
    num_classes: int = 10,
    in_chans: int = 3,
    embed_dim: int = 192,
    depth: int = 6,
    num_heads: int = 3,
    mlp_ratio: float = 2.0,
    **kwargs: Any,
) -> nn.Module:
    """A small ViT for 32x32 images: 4x4 patches (64 tokens + class token), width 192, depth 6."""
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(
        img_size=32,
        patch_size=4,
        in_chans=in_chans,
        num_classes=num_classes,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=mlp_ratio,
        **kwargs,
    )
