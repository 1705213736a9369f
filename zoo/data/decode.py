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
from typing import Any, Iterator, Sequence

import numpy as np

from zoo.errors import DataError
from zoo.runtime.preprocess import ImageReadError, read_image, read_uint8, stored_size
from zoo.runtime.skips import SkipReport

# One file that could not be turned into an image (``reason`` says why, the message says more).
ImageDecodeError = ImageReadError


def open_image(path: str | os.PathLike | Any, in_chans: int = 3, size: tuple[int, int] | None = None):
    """A PIL image following the contract: mode RGB (or L), upright, resized to ``size`` = (H, W) with bilinear."""
    if in_chans not in (1, 3):
        raise DataError(f"images can be read with 1 or 3 channels, not {in_chans}")
    return read_image(path, in_chans, size)


def decode_uint8(path: str | os.PathLike, in_chans: int, size: tuple[int, int] | None) -> np.ndarray:
    """The image as a (H, W, C) uint8 array (at its own size when ``size`` is None)."""
    return read_uint8(path, in_chans, size)


class OtherSize(Exception):
    """Raised by ``decode_many(only_size=True)`` at the first image of another size."""


_PROBE = 16  # images whose size decides whether a folder is cached at its stored resolution


def cache_size(paths: Sequence[Path], in_chans: int, size: tuple[int, int]) -> tuple[int, int]:
    """The (H, W) to cache images at: their own size when the first ones share one no larger than ``size``."""
    size = (int(size[0]), int(size[1]))
    stored = _common_size(paths[:_PROBE], in_chans)
    if stored is not None and stored[0] <= size[0] and stored[1] <= size[1]:
        return stored
    return size


def decode_stored(paths: Sequence[Path], in_chans: int, size: tuple[int, int], *,
                  stored: tuple[int, int] | None = None, fall_back: bool = True, **options: Any):
    """Like :func:`decode_many`, but never upsampled: ``(images, kept, skipped, stored)``.

    When every image has one stored size no larger than ``size`` (CIFAR's
    32x32 for a 224x224 model), the images are kept at that size, 49 times
    smaller, and :func:`resize_batch` brings each batch to ``size``; the
    returned ``stored`` is then that (H, W). Otherwise (mixed or larger
    images) they are decoded at ``size`` as before and ``stored == size``;
    with ``fall_back=False`` a mixed folder raises :class:`OtherSize` instead.
    """
    size = (int(size[0]), int(size[1]))
    stored = stored or cache_size(paths, in_chans, size)
    if stored != size:
        try:
            return (*decode_many(paths, in_chans, stored, only_size=True, **options), stored)
        except OtherSize:
            if not fall_back:
                raise  # a mixed folder: the caller decides (stream, or decode at the input size)
    return (*decode_many(paths, in_chans, size, **options), size)


def _common_size(paths: Sequence[Path], in_chans: int) -> tuple[int, int] | None:
    sizes = set()
    for path in paths:  # from the headers: a folder of photos is not decoded twice
        try:
            sizes.add(stored_size(path))
        except ImageReadError:
            continue
    return (int(next(iter(sizes))[0]), int(next(iter(sizes))[1])) if len(sizes) == 1 else None


def resize_batch(images: Any, size: Sequence[int]) -> Any:
    """A uint8 batch (N, C, h, w) resized to ``size`` = (H, W) with bilinear, as Pillow resizes an image.

    Only ever upsamples cached images (larger ones were reduced when decoded).
    Pillow's bilinear upsampling and ``interpolate(align_corners=False)`` use
    the same taps (edges included); rounding back to uint8 matches Pillow's
    to within one grey level.
    """
    import torch
    import torch.nn.functional as F

    h, w = int(size[0]), int(size[1])
    if tuple(images.shape[-2:]) == (h, w):
        return images
    layout = torch.channels_last if images.ndim == 4 and not images.is_contiguous() else torch.contiguous_format
    out = F.interpolate(images.float(), size=(h, w), mode="bilinear", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8).contiguous(memory_format=layout)


def decode_many(
    paths: Sequence[Path],
    in_chans: int,
    size: tuple[int, int],
    *,
    threads: int | None = None,
    progress: Any = None,
    only_size: bool = False,
):
    """Decode ``paths`` into one uint8 tensor (N, C, H, W).

    With ``only_size`` an image whose own size is not ``size`` is not resized:
    :class:`OtherSize` is raised instead (see :func:`decode_stored`).

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

    other = []

    def work(i: int) -> None:
        if other:
            return
        try:
            if only_size:
                arr = decode_uint8(paths[i], in_chans, None)
                if arr.shape[:2] != (h, w):
                    other.append(arr.shape[:2])
                    return
                buf[i] = arr
            else:
                buf[i] = decode_uint8(paths[i], in_chans, size)
            ok[i] = True
        except ImageReadError as exc:
            reasons[i] = exc.reason

    threads = threads or min(4, os.cpu_count() or 1)
    chunk = 256
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for start in range(0, n, chunk):
            list(pool.map(work, range(start, min(n, start + chunk))))
            if other:
                raise OtherSize(f"an image of size {other[0]} among images of size {size}")
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


ESTIMATE_FROM = 1000  # files: below this a pass takes seconds, and an estimate is noise


class PassEstimate:
    """One line, once the first part of a long pass is done: how many files, how long the rest will take.

    ``estimate(done)`` is called with the count done so far; on the first
    call for a pass of at least :data:`ESTIMATE_FROM` files it writes
    ``zoo: caching 10,000 images: ~52 s (190 img/s)`` to stderr.
    """

    def __init__(self, what: str, total: int, stream: Any = None) -> None:
        import time

        self.what, self.total, self.stream = what, int(total), stream
        self.started, self.said = time.perf_counter(), False

    def __call__(self, done: int) -> None:
        import sys
        import time

        if self.said or done <= 0 or done >= self.total or self.total < ESTIMATE_FROM:
            return
        self.said = True
        rate = done / max(1e-9, time.perf_counter() - self.started)
        print(f"zoo: {self.what} {self.total:,} images: ~{(self.total - done) / rate:,.0f} s more"
              f" ({rate:,.0f} img/s)", file=self.stream or sys.stderr, flush=True)


def stream_decoded(paths: Sequence[Path], in_chans: int, size: tuple[int, int], *, chunk: int = 64,
                   threads: int | None = None) -> Iterator[tuple[Any, list[int], SkipReport]]:
    """:func:`decode_many` chunk by chunk, the next chunk decoding in threads while the caller uses this one.

    Yields ``(images, kept, skipped)`` per chunk of ``chunk`` paths, ``kept``
    indexing ``paths``. Only two chunks are alive at once, so memory is set
    by ``chunk`` and not by the folder; a file that vanished or broke since
    the folder was scanned is skipped and reported like any unreadable one.
    """
    starts = list(range(0, len(paths), max(1, int(chunk))))
    if not starts:
        return

    def work(start: int):
        images, kept, skipped = decode_many(paths[start:start + chunk], in_chans, size, threads=threads)
        return images, [start + i for i in kept], skipped

    with ThreadPoolExecutor(max_workers=1) as ahead:
        pending = ahead.submit(work, starts[0])
        for i in range(len(starts)):
            done = pending.result()
            if i + 1 < len(starts):
                pending = ahead.submit(work, starts[i + 1])
            yield done


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
