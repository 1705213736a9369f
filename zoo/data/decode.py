"""Decoding images the one way the whole project does (see the preprocessing contract).

open with PIL -> convert to RGB (or L for one channel) -> resize to exactly
(H, W) with bilinear -> uint8 CHW. Floats and normalisation come later, per
batch, so the cache stays four times smaller than float32.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo.errors import DataError


class ImageDecodeError(Exception):
    """One file that could not be turned into an image (the reason is the message)."""


def open_image(path: str | os.PathLike | Any, in_chans: int = 3, size: tuple[int, int] | None = None):
    """A PIL image following the contract: mode RGB (or L), resized to ``size`` = (H, W) with bilinear."""
    from PIL import Image, UnidentifiedImageError

    if in_chans not in (1, 3):
        raise DataError(f"images can be read with 1 or 3 channels, not {in_chans}")
    try:
        with warnings.catch_warnings():
            # Large images are decoded anyway (a real bomb still raises below).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = path if isinstance(path, Image.Image) else Image.open(path)
            img.load()
            mode = "L" if in_chans == 1 else "RGB"
            if img.mode != mode:
                # Palette images with transparency go through RGBA first so PIL keeps the colours.
                if img.mode == "P" and "transparency" in img.info:
                    img = img.convert("RGBA")
                img = img.convert(mode)
            if size is not None and (img.height, img.width) != tuple(size):
                img = img.resize((size[1], size[0]), Image.BILINEAR)
    except Image.DecompressionBombError:
        raise ImageDecodeError("too large to decode safely") from None
    except UnidentifiedImageError:
        raise ImageDecodeError("not a readable image") from None
    except (PermissionError, FileNotFoundError, IsADirectoryError) as exc:
        raise ImageDecodeError(f"unreadable ({exc.strerror or exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Truncated or corrupt files surface as OSError from the decoder.
        raise ImageDecodeError(f"corrupt or truncated ({exc})") from None
    return img


def decode_uint8(path: str | os.PathLike, in_chans: int, size: tuple[int, int]) -> np.ndarray:
    """The image as a (H, W, C) uint8 array."""
    arr = np.asarray(open_image(path, in_chans, size), dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def skip_reason(message: str) -> str:
    """Group decode errors into a few counted reasons."""
    if message.startswith("corrupt"):
        return "corrupt"
    if message.startswith("too large"):
        return "too large"
    return "unreadable"


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
    (stored channels-last),
    the indices of ``paths`` they came from, and counts per skip reason.
    PIL releases the GIL while decoding, so a few threads overlap the work.
    """
    import torch

    h, w = size
    n = len(paths)
    buf = np.empty((n, h, w, in_chans), dtype=np.uint8)
    ok = np.zeros(n, dtype=bool)
    reasons: list[str | None] = [None] * n

    def work(i: int) -> None:
        try:
            buf[i] = decode_uint8(paths[i], in_chans, size)
            ok[i] = True
        except ImageDecodeError as exc:
            reasons[i] = skip_reason(str(exc))

    threads = threads or min(4, os.cpu_count() or 1)
    chunk = 256
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for start in range(0, n, chunk):
            list(pool.map(work, range(start, min(n, start + chunk))))
            if progress is not None:
                progress(min(n, start + chunk))
    kept = np.flatnonzero(ok)
    skipped: dict[str, int] = {}
    for r in reasons:
        if r is not None:
            skipped[r] = skipped.get(r, 0) + 1
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
    except ImageDecodeError as exc:
        raise DataError(f"cannot read image {str(image)!r}: {exc}") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)
    m = torch.tensor(list(mean), dtype=torch.float32).view(-1, 1, 1)
    s = torch.tensor(list(std), dtype=torch.float32).view(-1, 1, 1)
    return (x - m) / s
