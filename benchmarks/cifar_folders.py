"""Helpers the cat/dog benchmarks share: image folders of CIFAR-10 images by index, child CPU time."""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Iterable


def link_folder(shared: Path, out: Path, indices: Iterable[int], classes: Iterable[str] = ("cat", "dog")) -> Path:
    """Symlinks to images ``indices`` of ``classes`` of ../shared/data/cifar10/train in an image folder."""
    for name in classes:
        (out / name).mkdir(parents=True, exist_ok=True)
        for i in indices:
            link = out / name / f"{i:04d}.jpg"
            if not link.exists():
                link.symlink_to(shared / "data" / "cifar10" / "train" / name / f"{i:04d}.jpg")
    return out


def children_cpu() -> float:
    """CPU seconds of finished child processes: on a shared machine a fairer figure than wall time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
