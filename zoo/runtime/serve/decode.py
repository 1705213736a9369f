"""Uploaded bytes -> a preprocessed array, refusing what is not a safe image.

An upload is never a path: it is decoded from memory. Before any pixel is
decoded, the header's width x height is checked against ``max_pixels``, so a
small file that claims a huge canvas (a decompression bomb) costs nothing.
Only the common still-image formats are tried, so pillow's rarer parsers are
never reached from the network.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

from ..errors import RuntimeInputError
from ..preprocess import Preprocessing

FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "PPM")
DEFAULT_MAX_PIXELS = 40_000_000  # about 7,000 x 5,700: any photo, not a bomb


class BadImage(RuntimeInputError):
    """The bytes are not an image this server will decode; the message is one line."""


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Decode ``data`` into a PIL image, or raise :class:`BadImage` saying why."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise BadImage("the body is empty: send an image's bytes, or a multipart form with a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = image.size
            if width * height > max_pixels:
                raise BadImage(f"the image is {width}x{height} pixels, more than the server's limit of {max_pixels:,}")
            image.load()
    except BadImage:
        raise
    except UnidentifiedImageError:
        raise BadImage(f"the body is not an image ({', '.join(f.lower() for f in FORMATS)} are accepted)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(f"the image is larger than the server's limit of {max_pixels:,} pixels") from None
    except Exception as exc:  # truncated or corrupt data: pillow raises OSError, SyntaxError, ValueError, ...
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BadImage(f"the image cannot be decoded (corrupt or truncated?): {text[:200]}") from None
    return image


def image_rows(data: bytes, preprocessing: Preprocessing, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The ``(1, C, H, W)`` model input for one uploaded image."""
    return preprocessing.image_to_array(decode_image(data, max_pixels))[None]


__all__ = ["BadImage", "DEFAULT_MAX_PIXELS", "FORMATS", "decode_image", "image_rows"]
