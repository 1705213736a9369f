"""Test-time augmentation on preprocessed batches: numpy only, so ONNX Runtime and PyTorch share it.

``flip`` adds the mirror image of every view; ``crops`` replaces the image by five crops of 87.5% of
its side (the centre and the four corners), each resized back to the input size. ``flip,crops`` gives
ten views. The class probabilities of the views are averaged (their softmax, not their logits).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .errors import RuntimeInputError

MODES = ("flip", "crops")
CROP_FRACTION = 0.875


def parse_tta(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"flip,crops"`` -> ``("flip", "crops")``; ``None``, ``""`` and ``"none"`` -> ``()``."""
    if spec is None:
        return ()
    parts = [p.strip().lower() for item in ([spec] if isinstance(spec, str) else spec) for p in str(item).split(",")]
    parts = [p for p in parts if p and p != "none"]
    unknown = [p for p in parts if p not in MODES]
    if unknown:
        raise RuntimeInputError(f"--tta {unknown[0]!r}: choose flip, crops or flip,crops")
    return tuple(m for m in MODES if m in parts)


def views(batch: np.ndarray, modes: Sequence[str]) -> list[np.ndarray]:
    """The augmented copies of an ``(N, C, H, W)`` batch that ``modes`` ask for (the batch itself first)."""
    out = five_crops(batch) if "crops" in modes else [batch]
    if "flip" in modes:
        out = out + [np.ascontiguousarray(v[..., ::-1]) for v in out]
    return out


def average_probabilities(probabilities: Callable[[np.ndarray], np.ndarray], batch: np.ndarray,
                          modes: Sequence[str]) -> np.ndarray:
    """The mean of ``probabilities(view)`` over the views of ``batch``; without modes, one call."""
    if not modes:
        return probabilities(batch)
    total = None
    chosen = views(batch, modes)
    for view in chosen:
        p = np.asarray(probabilities(view), dtype=np.float64)
        total = p if total is None else total + p
    return total / len(chosen)


def five_crops(batch: np.ndarray, fraction: float = CROP_FRACTION) -> list[np.ndarray]:
    """Centre and corner crops of ``fraction`` of each side, resized back to the batch's size."""
    h, w = batch.shape[-2:]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    tops = [(h - ch) // 2, 0, 0, h - ch, h - ch]
    lefts = [(w - cw) // 2, 0, w - cw, 0, w - cw]
    return [resize_bilinear(batch[..., t:t + ch, l:l + cw], h, w) for t, l in zip(tops, lefts)]


def resize_bilinear(batch: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of the last two axes (half-pixel centres, as PyTorch's ``align_corners=False``)."""
    rows, row_w = _axis(batch.shape[-2], height)
    cols, col_w = _axis(batch.shape[-1], width)
    top = batch[..., rows[0], :] * (1 - row_w)[:, None] + batch[..., rows[1], :] * row_w[:, None]
    out = top[..., cols[0]] * (1 - col_w) + top[..., cols[1]] * col_w
    return out.astype(batch.dtype, copy=False)


def _axis(size: int, new: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    src = (np.arange(new, dtype=np.float64) + 0.5) * (size / new) - 0.5
    src = np.clip(src, 0, size - 1)
    low = np.floor(src).astype(np.intp)
    high = np.minimum(low + 1, size - 1)
    return (low, high), (src - low).astype(np.float32)
