"""ImageNet EfficientNet-Lite0/1/2 for zoo: the models under short names, and weights from installed packages."""

__version__ = "0.2.0"
