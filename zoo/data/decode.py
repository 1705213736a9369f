"""Decoding images for training and evaluation, built on the rules of :mod:`zoo.runtime.preprocess`.

The decode rules (modes, EXIF orientation, 16-bit and float images, too-large
files) live once, in ``zoo.runtime.preprocess``; this module adds the
batched uint8 cache and torch tensors. Floats and normalisation come later,
per batch, so the cache stays four times smaller than float32.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo.errors import DataError
from zoo.runtime.preprocess import ImageReadError, read_image, read_uint8
from zoo.runtime.skips import SkipReport

# One file that could not be turned into an image (``reason`` says why, the message says more).
ImageDecodeError = ImageReadError


def open_image(path: str | os.PathLike | Any, in_chans: int = 3, size: tuple[int, int] | None = None):
    """A PIL image following the contract: mode RGB (or L), upright, resized to ``size`` = (H, W) with bilinear."""
    if in_chans not in (1, 3):
        raise DataError(f"images can be read with 1 or 3 channels, not {in_chans}")
    return read_image(path, in_chans, size)


def decode_uint8(path: str | os.PathLike, in_chans: int, size: tuple[int, int]) -> np.ndarray:
    """The image as a (H, W, C) uint8 array."""
    return read_uint8(path, in_chans, size)


def decode_many(
    paths: Sequence[Path],
    in_chans: int,
    size: tuple[int, int],
    *,
    threads: int | None = None,
    progress: Any = None,
):
    """Decode ``paths`` into one uint8 tensor (N, C, H, W).

    Returns ``(images, kept, skipped)``: the tensor of the images that decoded
    (stored channels-last), the indices of ``paths`` they came from, and a
    :class:`~zoo.runtime.skips.SkipReport` of the others.
    PIL releases the GIL while decoding, so a few threads overlap the work.
    """
    import torch

    h, w = size
    n = len(paths)
    buf = np.empty((n, h, w, in_chans), dtype=np.uint8)
    ok = np.zeros(n, dtype=bool)
    reasons: list[str | None] = [None] * n  # filled by the threads, read in order afterwards

    def work(i: int) -> None:
        try:
            buf[i] = decode_uint8(paths[i], in_chans, size)
            ok[i] = True
        except ImageReadError as exc:
            reasons[i] = exc.reason

    threads = threads or min(4, os.cpu_count() or 1)
    chunk = 256
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for start in range(0, n, chunk):
            list(pool.map(work, range(start, min(n, start + chunk))))
            if progress is not None:
                progress(min(n, start + chunk))
    kept = np.flatnonzero(ok)
    skipped = SkipReport()
    for path, reason in zip(paths, reasons):
        if reason is not None:
            skipped.add(path, reason)
    if len(kept) < n:
        buf = buf[kept]
    # An (N, C, H, W) view of the NHWC buffer, i.e. channels-last strides: no
    # copy, and batches cut from it feed channels-last convolutions directly.
    images = torch.from_numpy(buf).permute(0, 3, 1, 2)
    return images, kept.tolist(), skipped


def preprocess_image(
    image: str | os.PathLike | Any,
    input_size: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
):
    """The evaluation preprocessing of one image: float32 (C, H, W), normalised.

    ``image`` is a path or a PIL image; ``input_size`` is (C, H, W).
    """
    import torch

    c, h, w = (int(v) for v in input_size)
    try:
        arr = np.asarray(open_image(image, c, (h, w)), dtype=np.uint8)
    except ImageReadError as exc:
        raise DataError(str(exc)) from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)
    m = torch.tensor(list(mean), dtype=torch.float32).view(-1, 1, 1)
    s = torch.tensor(list(std), dtype=torch.float32).view(-1, 1, 1)
    return (x - m) / s
