"""ImageNet EfficientNet-Lite0 for zoo: the model under a short name, and weights from an installed package."""

__version__ = "0.1.0"
