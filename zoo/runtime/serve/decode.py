"""Uploaded bytes -> a preprocessed array, refusing what is not a safe image.

An upload is never a path: it is decoded from memory. Before any pixel is
decoded, the header's width x height is checked against ``max_pixels``, so a
small file that claims a huge canvas (a decompression bomb) costs nothing.
Only the common still-image formats are tried, so pillow's rarer parsers are
never reached from the network.

A JPEG much larger than the model's input is decoded in draft mode: libjpeg
scales it by 1/2, 1/4 or 1/8 while decoding (in the DCT), to the smallest
scale that still leaves at least the input size on both sides, so a
12-megapixel photo for a 224x224 model costs an eighth of the memory and
time. The bilinear resize to the input size follows, as for any image
(zoo/runtime/preprocess.py). ``draft=False`` decodes every pixel.

This runs in the server's decode threads: nothing here changes process-wide
state (no ``warnings.catch_warnings``, which is not thread-safe).
"""

from __future__ import annotations

import io
import time

import numpy as np

from ..errors import RuntimeInputError
from ..preprocess import Preprocessing

FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "PPM")
# 16 million: a 12-megapixel phone photo (4032x3024) and 4000x4000 pass; as RGB at most 48 MB decoded.
DEFAULT_MAX_PIXELS = 16_000_000


class BadImage(RuntimeInputError):
    """The bytes are not an image this server will decode; the message is one line."""


class ImageTooLarge(BadImage):
    """The image has more pixels than the server's limit (answered 413)."""


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, draft: tuple[int, int] | None = None):
    """Decode ``data`` into a PIL image, or raise :class:`BadImage` saying why.

    ``draft`` = (height, width) the image will be resized to: a JPEG is
    decoded at a reduced scale that keeps at least that many pixels per side,
    whichever way EXIF turns it.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise BadImage("the body is empty: send an image's bytes, or a multipart form with a file")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooLarge(f"the image is {width}x{height} pixels, more than this server's limit of"
                                f" {max_pixels:,} (raise it with --max-pixels)")
        if draft is not None and image.format == "JPEG":
            side = max(draft)
            image.draft(image.mode, (side, side))
        image.load()
    except BadImage:
        raise
    except UnidentifiedImageError:
        raise BadImage(f"the body is not an image ({', '.join(f.lower() for f in FORMATS)} are accepted)") from None
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"the image is larger than this server's limit of {max_pixels:,} pixels"
                            " (raise it with --max-pixels)") from None
    except Exception as exc:  # truncated or corrupt data: pillow raises OSError, SyntaxError, ValueError, ...
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BadImage(f"the image cannot be decoded (corrupt or truncated?): {text[:200]}") from None
    return image


def decode_rows(data: bytes, preprocessing: Preprocessing, max_pixels: int = DEFAULT_MAX_PIXELS,
                draft: bool = True) -> tuple[np.ndarray, float, float]:
    """The ``(1, C, H, W)`` model input for one upload, and the seconds spent decoding and resizing."""
    start = time.perf_counter()
    size = (preprocessing.height, preprocessing.width)
    image = decode_image(data, max_pixels, size if draft else None)
    decoded = time.perf_counter()
    try:
        rows = preprocessing.image_to_array(image)[None]
    except RuntimeInputError:
        raise
    except Exception as exc:  # a mode pillow decodes but cannot convert, and the like
        raise BadImage(f"the image cannot be converted: {type(exc).__name__}: {str(exc)[:200]}") from None
    return rows, decoded - start, time.perf_counter() - decoded


def image_rows(data: bytes, preprocessing: Preprocessing, max_pixels: int = DEFAULT_MAX_PIXELS,
               draft: bool = True) -> np.ndarray:
    """The ``(1, C, H, W)`` model input for one uploaded image."""
    return decode_rows(data, preprocessing, max_pixels, draft)[0]


__all__ = ["BadImage", "DEFAULT_MAX_PIXELS", "FORMATS", "ImageTooLarge", "decode_image", "decode_rows", "image_rows"]
