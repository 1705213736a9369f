"""Maintenance scripts (run by hand; they may import torch, timm and torchvision)."""
