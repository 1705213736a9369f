"""Augmentations and normalisation.

Augmentations are named in a short spec, ``"crop=4,flip,rotate=15,jitter=0.2,blur=1.0"``
(and the policies ``trivial[=BINS]``, TrivialAugmentWide, and ``randaugment[=MAGNITUDE]``)
(``"default"`` is ``crop,flip``; ``"none"`` switches them off). The same spec
builds two implementations:

* :class:`BatchAugment` works on a whole batch of tensors at once (vectorised
  crop offsets, flips, one ``grid_sample`` for rotations, per-sample jitter
  factors, one grouped convolution for blur). The in-memory cache uses it:
  per-sample Python calls would cost more than the model for small images.
* :func:`sample_transform` builds the per-image ``torchvision.transforms.v2``
  pipeline the streaming DataLoader workers run.

Both apply to the training split only, on images in [0, 1] before normalisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from zoo.errors import DataError

# name -> (default parameter, meaning)
AUGMENTATIONS: dict[str, tuple[float, str]] = {
    "crop": (4, "random crop after zero padding of this many pixels"),
    "flip": (0.5, "horizontal flip with this probability"),
    "rotate": (15, "rotation by up to this many degrees"),
    "jitter": (0.2, "brightness, contrast and saturation jitter of this strength"),
    "blur": (1.0, "Gaussian blur (p=0.5) with sigma up to this value"),
    "trivial": (31, "TrivialAugmentWide (Muller and Hutter, 2021): one random operation, magnitude from this many bins"),
    "randaugment": (9, "RandAugment (Cubuk et al., 2020): two random operations of this magnitude (0-30)"),
}
# The two policies of torchvision.transforms.v2, by name: what their parameter means to them.
_POLICIES = {"trivial": ("TrivialAugmentWide", "num_magnitude_bins"), "randaugment": ("RandAugment", "magnitude")}
PRESETS = {"default": "crop,flip", "none": "", "light": "crop,flip", "strong": "crop,flip,rotate,jitter,blur"}


@dataclass(frozen=True)
class Augment:
    """One augmentation and its parameter."""

    name: str
    value: float


def parse_augment(spec: str | Sequence[str] | None) -> list[Augment]:
    """``"crop=4,flip"`` -> ``[Augment('crop', 4), Augment('flip', 0.5)]``."""
    if spec is None:
        return []
    parts: list[str] = []
    for item in [spec] if isinstance(spec, str) else list(spec):
        for piece in str(item).split(","):
            piece = piece.strip()
            if piece in PRESETS:
                parts.extend(p for p in PRESETS[piece].split(",") if p)
            elif piece:
                parts.append(piece)
    out: list[Augment] = []
    for piece in parts:
        name, sep, raw = piece.partition("=")
        name = name.strip().lower()
        if name not in AUGMENTATIONS:
            known = ", ".join([*AUGMENTATIONS, *PRESETS])
            raise DataError(f"unknown augmentation {name!r}; choose from {known}")
        try:
            value = float(raw) if sep else float(AUGMENTATIONS[name][0])
        except ValueError:
            raise DataError(f"augmentation {piece!r}: {raw!r} is not a number") from None
        if value < 0:
            raise DataError(f"augmentation {piece!r}: the value must not be negative")
        if name in _POLICIES and (value != int(value) or not _policy_value_ok(name, value)):
            raise DataError(f"augmentation {piece!r}: {_POLICIES[name][1]} must be a whole number"
                            f" ({'2 or more' if name == 'trivial' else '0 to 30'})")
        out = [a for a in out if a.name != name] + [Augment(name, value)]
    return out


def _policy_value_ok(name: str, value: float) -> bool:
    return value >= 2 if name == "trivial" else value <= 30


def policy(aug: Augment):
    """The ``torchvision.transforms.v2`` policy of a ``trivial`` or ``randaugment`` entry."""
    from torchvision.transforms import v2

    cls_name, arg = _POLICIES[aug.name]
    return getattr(v2, cls_name)(**{arg: int(aug.value)})


def format_augment(augs: Sequence[Augment]) -> str:
    """The spec string of ``augs`` (stored in checkpoints)."""
    return ",".join(f"{a.name}={a.value:g}" for a in augs) or "none"


class BatchAugment:
    """Random augmentations applied to a float batch (N, C, H, W) in [0, 1], vectorised."""

    def __init__(self, augs: Sequence[Augment]) -> None:
        self.augs = list(augs)
        self.policies = {a.name: policy(a) for a in self.augs if a.name in _POLICIES}

    def __bool__(self) -> bool:
        return bool(self.augs)

    def __call__(self, x, generator=None):
        for aug in self.augs:
            x = getattr(self, f"_{aug.name}")(x, aug.value, generator)
        return x

    @staticmethod
    def _rand(n: int, x, generator) -> Any:
        import torch

        # Drawn on the CPU generator so a run is reproducible whatever the device.
        return torch.rand(n, generator=generator).to(x.device)

    def _crop(self, x, pad: float, generator):
        import torch
        import torch.nn.functional as F

        p = int(pad)
        if p <= 0:
            return x
        n, c, h, w = x.shape
        padded = F.pad(x, (p, p, p, p))
        off = torch.randint(0, 2 * p + 1, (2, n), generator=generator).to(x.device)
        rows = (off[0][:, None] + torch.arange(h, device=x.device))[:, None, :, None].expand(n, c, h, w + 2 * p)
        # Gather rows, then columns: two gathers beat building (N, H, W) index grids.
        out = padded.gather(2, rows)
        cols = (off[1][:, None] + torch.arange(w, device=x.device))[:, None, None, :].expand(n, c, h, w)
        return out.gather(3, cols)

    def _policy(self, name: str, x, generator):
        """A v2 policy image by image (each draws its own operations), in uint8 as the policies expect.

        The policies draw from torch's global generator; it is seeded from
        ``generator`` for the call and then put back, so the draws follow the
        run's augmentation stream and leave the global one alone.
        """
        import torch

        transform = self.policies[name]
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        images = x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = torch.stack([transform(img) for img in images])
        return out.to(x.dtype).div_(255.0)

    def _trivial(self, x, bins: float, generator):
        return self._policy("trivial", x, generator)

    def _randaugment(self, x, magnitude: float, generator):
        return self._policy("randaugment", x, generator)

    def _flip(self, x, p: float, generator):
        import torch

        mask = self._rand(x.shape[0], x, generator) < p
        return torch.where(mask[:, None, None, None], x.flip(3), x)

    def _rotate(self, x, degrees: float, generator):
        import torch
        import torch.nn.functional as F

        if degrees <= 0:
            return x
        n = x.shape[0]
        angle = (self._rand(n, x, generator) * 2 - 1) * math.radians(degrees)
        cos, sin = torch.cos(angle), torch.sin(angle)
        zero = torch.zeros_like(cos)
        theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _jitter(self, x, strength: float, generator):
        if strength <= 0:
            return x
        n = x.shape[0]

        def factor():
            return (1 + (self._rand(n, x, generator) * 2 - 1) * strength).view(n, 1, 1, 1).to(x.dtype)

        x = x * factor()  # brightness
        gray = _gray(x)
        x = (x - gray.mean(dim=(1, 2, 3), keepdim=True)) * factor() + gray.mean(dim=(1, 2, 3), keepdim=True)
        if x.shape[1] == 3:
            gray = _gray(x)
            x = (x - gray) * factor() + gray  # saturation
        return x.clamp_(0.0, 1.0)

    def _blur(self, x, max_sigma: float, generator):
        import torch
        import torch.nn.functional as F

        if max_sigma <= 0:
            return x
        n, c, h, w = x.shape
        radius = max(1, min(int(math.ceil(2 * max_sigma)), (min(h, w) - 1) // 2))
        sigma = 0.1 + self._rand(n, x, generator) * (max_sigma - 0.1)
        apply = self._rand(n, x, generator) < 0.5
        t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
        kernel = torch.exp(-(t[None, :] ** 2) / (2 * sigma[:, None].to(x.dtype) ** 2))
        kernel = kernel / kernel.sum(1, keepdim=True)
        delta = (t == 0).to(x.dtype).expand_as(kernel)
        kernel = torch.where(apply[:, None], kernel, delta)
        k = kernel.repeat_interleave(c, 0)  # one kernel per (sample, channel)
        y = x.reshape(1, n * c, h, w)
        y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), k[:, None, None, :], groups=n * c)
        y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), k[:, None, :, None], groups=n * c)
        return y.reshape(n, c, h, w)


def _gray(x):
    if x.shape[1] == 3:
        return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    return x


def sample_transform(augs: Sequence[Augment], size: tuple[int, int]):
    """The per-image ``torchvision.transforms.v2`` pipeline for ``augs`` (uint8 CHW in, uint8 out)."""
    from torchvision.transforms import v2

    steps: list[Any] = []
    for aug in augs:
        if aug.name == "crop" and aug.value > 0:
            steps.append(v2.RandomCrop(size, padding=int(aug.value)))
        elif aug.name == "flip":
            steps.append(v2.RandomHorizontalFlip(p=aug.value))
        elif aug.name == "rotate" and aug.value > 0:
            steps.append(v2.RandomRotation(aug.value, interpolation=v2.InterpolationMode.BILINEAR))
        elif aug.name == "jitter" and aug.value > 0:
            steps.append(v2.ColorJitter(brightness=aug.value, contrast=aug.value, saturation=aug.value))
        elif aug.name == "blur" and aug.value > 0:
            radius = max(1, int(math.ceil(2 * aug.value)))
            steps.append(v2.RandomApply([v2.GaussianBlur(2 * radius + 1, sigma=(0.1, max(0.1, aug.value)))], p=0.5))
        elif aug.name in _POLICIES:
            steps.append(policy(aug))
    return v2.Compose(steps) if steps else None


class Normalize:
    """uint8 (or [0, 1] float) batch -> ``(x / 255 - mean) / std`` as float32, optionally augmented first.

    Float batches that are not images (cached features) pass through when
    ``images=False``.
    """

    def __init__(self, mean: Sequence[float] | None, std: Sequence[float] | None, augment: BatchAugment | None = None) -> None:
        self.mean = list(mean) if mean is not None else None
        self.std = list(std) if std is not None else None
        self.augment = augment if augment else None
        self._cache: dict[Any, tuple[Any, Any]] = {}

    def _stats(self, device, channels: int):
        import torch

        key = (str(device), channels)
        if key not in self._cache:
            mean = torch.tensor(self.mean or [0.0] * channels, dtype=torch.float32, device=device).view(1, -1, 1, 1)
            std = torch.tensor(self.std or [1.0] * channels, dtype=torch.float32, device=device).view(1, -1, 1, 1)
            # x/255 then (x - m)/s folded into one multiply-add.
            self._cache[key] = (1.0 / (255.0 * std), -mean / std)
        return self._cache[key]

    def __call__(self, x, *, train: bool = False, generator=None):
        import torch

        if x.dtype != torch.uint8:
            return x if x.dtype == torch.float32 else x.float()
        scale, shift = self._stats(x.device, x.shape[1])
        if train and self.augment is not None:
            x = self.augment(x.float().div_(255.0), generator)
            return x.mul_(scale * 255.0).add_(shift)
        return torch.addcmul(shift, x.float(), scale)


def compute_mean_std(images, chunk: int = 1024) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] of a uint8 tensor (N, C, H, W), in float64 for accuracy."""
    import torch

    n, c = images.shape[0], images.shape[1]
    if n == 0:
        raise DataError("cannot compute mean/std of an empty training set")
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for start in range(0, n, chunk):
        block = images[start:start + chunk].to("cpu", torch.float64).div_(255.0)
        total += block.sum(dim=(0, 2, 3))
        total_sq += block.pow_(2).sum(dim=(0, 2, 3))
    count = n * images.shape[2] * images.shape[3]
    mean = total / count
    std = (total_sq / count - mean ** 2).clamp_min(1e-12).sqrt()
    return [round(float(v), 6) for v in mean], [round(max(float(v), 1e-3), 6) for v in std]
