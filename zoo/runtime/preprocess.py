"""Image decoding and preprocessing in numpy and pillow: the one place the decode rules live.

Every command that reads images (train, finetune, evaluate, predict with a
checkpoint or an ``.onnx`` file, export validation, serving) decodes them
here; ``zoo.data`` builds its uint8 cache and its streaming loader on
:func:`read_image`. The rules (docs/training.md, "Decoding"):

* a file is an image when its suffix is in :data:`IMAGE_SUFFIXES` (any case);
* it is opened with PIL and decoded at once, so a truncated file fails here;
* EXIF orientation is applied, so a rotated phone photo is read upright;
* the first frame of an animation is used;
* alpha is dropped (transparent pixels keep the colour stored under them),
  palettes are expanded, CMYK, YCbCr, LAB and HSV are converted;
* integer modes (I, I;16...) hold 8-bit values when none exceeds 255 and
  16-bit values otherwise (divided by 257); float mode F holds values in
  [0, 1] when none exceeds 1, else 0..255; out-of-range values are clipped;
* images over twice PIL's ``MAX_IMAGE_PIXELS`` are refused as too large;
* then: convert to "RGB" (or "L" for one channel), resize to exactly (H, W)
  with bilinear filtering and no crop, scale to float32 in [0, 1], lay out
  CHW, normalise with mean/std. The arithmetic follows torchvision's
  ``to_tensor`` then ``Normalize`` step by step in float32, so both paths
  give the same numbers.

A file that cannot be decoded raises :class:`ImageReadError`, whose
``reason`` is one of :data:`SKIP_REASONS`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import RuntimeInputError
from .skips import SkipReport

# The one list of image suffixes: folder scans for training, evaluation, prediction and export agree on it.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm"}
)

NOT_AN_IMAGE = "not an image"
SKIP_REASONS = (NOT_AN_IMAGE, "empty file", "unreadable", "corrupt", "too large", "unsupported mode")


class ImageReadError(RuntimeInputError):
    """One file that could not be decoded; ``reason`` is a short key, the message says more."""

    def __init__(self, path: Any, reason: str, detail: str) -> None:
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"cannot read image {self.path!r}: {detail}")


def is_image_name(path: str | os.PathLike) -> bool:
    """Whether the file's suffix (in any case) is one of :data:`IMAGE_SUFFIXES`."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def channels_mode(in_chans: int) -> str:
    """The PIL mode images are converted to for a model with ``in_chans`` channels."""
    if in_chans not in (1, 3):
        raise RuntimeInputError(f"images can be fed to 1- or 3-channel models, not {in_chans}-channel ones")
    return "L" if in_chans == 1 else "RGB"


def open_image(path: str | os.PathLike, size: tuple[int, int] | None = None) -> Any:
    """Open an image file with PIL, decode it now and turn it upright; :class:`ImageReadError` when it cannot.

    With ``size`` = (H, W), a JPEG is decoded in draft mode: libjpeg scales
    it by 1/2, 1/4 or 1/8 while decoding, to the smallest scale still at
    least ``size`` once upright, so a 12-megapixel photo read for a 224x224
    model costs a 64th of the full decode (the caller then resizes exactly).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Large images are decoded anyway; a real bomb (over twice the limit) still raises.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if size is not None and image.format in ("JPEG", "MPO"):
                    draft(image, size)
                image.load()  # decode now, so a truncated file fails here and not later
    except Image.DecompressionBombError:
        raise ImageReadError(path, "too large", f"over {2 * (Image.MAX_IMAGE_PIXELS or 0)} pixels,"
                             " PIL's decompression-bomb limit") from None
    except UnidentifiedImageError:
        empty = _size(path) == 0
        raise ImageReadError(path, "empty file" if empty else "unreadable",
                             "the file is empty" if empty else "not an image file pillow can read") from None
    except IsADirectoryError:
        raise ImageReadError(path, "unreadable", "it is a folder; pass it as a folder input instead") from None
    except FileNotFoundError:
        raise ImageReadError(path, "unreadable", "it does not exist (or is a dangling link)") from None
    except OSError as exc:
        if exc.errno is not None:  # the file system refused (permissions, link loops, I/O)
            raise ImageReadError(path, "unreadable", exc.strerror or str(exc)) from None
        raise ImageReadError(path, "corrupt", f"corrupt or truncated ({exc})") from None
    except (SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise ImageReadError(path, "corrupt", f"corrupt or truncated ({exc})") from None
    return upright(image)


_SIDEWAYS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def draft(image: Any, size: tuple[int, int]) -> None:
    """Ask a not yet decoded JPEG for the smallest DCT scale that is still at least ``size`` = (H, W) upright."""
    h, w = int(size[0]), int(size[1])
    try:
        if image.getexif().get(0x0112, 1) in _SIDEWAYS:
            h, w = w, h
    except Exception:  # a broken EXIF block: upright() ignores it too
        pass
    if image.width >= 2 * w and image.height >= 2 * h:
        image.draft(image.mode, (w, h))


def _size(path: Any) -> int | None:
    try:
        return os.path.getsize(path)
    except (OSError, TypeError):
        return None


def stored_size(path: str | os.PathLike) -> tuple[int, int]:
    """The (H, W) an image file decodes to, upright, read from its header without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                w, h = image.size
                try:
                    sideways = image.getexif().get(0x0112, 1) in _SIDEWAYS
                except Exception:
                    sideways = False
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageReadError(path, "unreadable", f"cannot read its size ({exc})") from None
    return (w, h) if sideways else (h, w)


def upright(image: Any) -> Any:
    """The image turned as its EXIF orientation tag says (unchanged without one)."""
    from PIL import ImageOps

    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block is no reason to refuse the pixels
        return image
    return ImageOps.exif_transpose(image) if orientation in (2, 3, 4, 5, 6, 7, 8) else image


def to_mode(image: Any, mode: str, source: Any = "image") -> Any:
    """``image`` in ``mode`` ("RGB" or "L") by the rules in the module docstring."""
    if image.mode == mode:
        return image
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        image = _eight_bit(image)
        if image.mode == mode:
            return image
    elif image.mode in ("P", "PA") and (image.mode == "PA" or "transparency" in image.info):
        image = image.convert("RGBA")  # through RGBA, so PIL expands the palette without a warning
    try:
        return image.convert(mode)
    except ValueError as exc:
        raise ImageReadError(source, "unsupported mode", f"pillow cannot convert mode {image.mode} to {mode}"
                             f" ({exc})") from None


def _eight_bit(image: Any) -> Any:
    """A 32-bit integer, 16-bit or float image as 8-bit "L" (ranges by the rules above)."""
    from PIL import Image

    values = np.asarray(image).astype(np.float32)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    top = float(values.max()) if values.size else 0.0
    if image.mode == "F":
        scale = 255.0 if top <= 1.0 else 1.0
    else:
        scale = 1.0 if top <= 255 else 1.0 / 257.0
    return Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), "L")


def read_image(source: Any, in_chans: int = 3, size: tuple[int, int] | None = None) -> Any:
    """A path or PIL image as a PIL image in RGB (or L), upright, resized to ``size`` = (H, W) with bilinear."""
    from PIL import Image

    mode = channels_mode(in_chans)
    image = upright(source) if isinstance(source, Image.Image) else open_image(source, size)
    image = to_mode(image, mode, source if not isinstance(source, Image.Image) else "image")
    if size is not None and (image.height, image.width) != (int(size[0]), int(size[1])):
        image = image.resize((int(size[1]), int(size[0])), Image.BILINEAR)
    return image


def read_uint8(source: Any, in_chans: int, size: tuple[int, int]) -> np.ndarray:
    """The image as a (H, W, C) uint8 array."""
    arr = np.asarray(read_image(source, in_chans, size), dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


@dataclass(frozen=True)
class Preprocessing:
    """What turns an image file into the model's input: channels, size, normalisation."""

    in_chans: int
    height: int
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        channels_mode(self.in_chans)
        if self.height < 1 or self.width < 1:
            raise RuntimeInputError(f"input size must be positive, got {self.height}x{self.width}")
        if len(self.mean) != self.in_chans or len(self.std) != self.in_chans:
            raise RuntimeInputError(
                f"mean and std need {self.in_chans} value(s) each for a {self.in_chans}-channel model,"
                f" got {len(self.mean)} and {len(self.std)}"
            )
        if any(s == 0 for s in self.std):
            raise RuntimeInputError("std values must be non-zero")

    @property
    def mode(self) -> str:
        """The PIL mode images are converted to."""
        return channels_mode(self.in_chans)

    @property
    def input_size(self) -> tuple[int, int, int]:
        return (self.in_chans, self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        return {"input_size": list(self.input_size), "mean": list(self.mean), "std": list(self.std)}

    # -- the steps -----------------------------------------------------------------

    def image_to_array(self, image: Any) -> np.ndarray:
        """A PIL image (or a path) -> float32 CHW array, normalised."""
        pixels = read_uint8(image, self.in_chans, (self.height, self.width))
        x = pixels.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(-1, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(-1, 1, 1)
        return (x - mean) / std

    def load(self, path: str | os.PathLike) -> np.ndarray:
        """Read one image file and preprocess it."""
        return self.image_to_array(path)

    def load_batch(self, paths: Sequence[str | os.PathLike]) -> np.ndarray:
        """Read image files into one ``(N, C, H, W)`` float32 batch (the first unreadable one raises)."""
        batch = np.empty((len(paths), self.in_chans, self.height, self.width), dtype=np.float32)
        for i, path in enumerate(paths):
            batch[i] = self.load(path)
        return batch

    def load_readable(self, paths: Sequence[Any], skipped: SkipReport) -> tuple[list[Any], np.ndarray]:
        """The images of ``paths`` that decode, as ``(their paths, batch)``; the others go into ``skipped``."""
        kept, arrays = [], []
        for path in paths:
            try:
                arrays.append(self.load(path))
            except ImageReadError as exc:
                skipped.add(path, exc.reason, str(exc))
                continue
            kept.append(path)
        if not arrays:
            return kept, np.empty((0, self.in_chans, self.height, self.width), dtype=np.float32)
        return kept, np.stack(arrays)

    def check_array(self, batch: np.ndarray) -> np.ndarray:
        """Accept CHW or NCHW float arrays that are already preprocessed; explain a misfit."""
        arr = np.asarray(batch)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4:
            raise RuntimeInputError(f"expected an (N, C, H, W) array, got shape {tuple(np.shape(batch))}")
        if arr.shape[1] != self.in_chans:
            hint = " (channels last? transpose to NCHW)" if arr.shape[-1] == self.in_chans else ""
            raise RuntimeInputError(
                f"the model takes {self.in_chans} channel(s), the array has {arr.shape[1]}{hint}"
            )
        return np.ascontiguousarray(arr, dtype=np.float32)


def walk_images(root: str | os.PathLike, skipped: SkipReport | None = None) -> list[Path]:
    """Image files under ``root``, recursively: each folder's files sorted, then its sub-folders sorted.

    Hidden files and folders are left out; symbolic links are followed, but
    every real folder is visited once, so a link loop ends. Files with other
    suffixes are recorded in ``skipped`` as "not an image".
    """
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if is_image_name(name):
                found.append(path)
            elif skipped is not None:
                skipped.add(path, NOT_AN_IMAGE)
    return found


def list_images(inputs: Iterable[str | os.PathLike], skipped: SkipReport | None = None) -> list[Path]:
    """Expand files and folders (see :func:`walk_images`) into image paths; a missing input raises."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found.extend(walk_images(path, skipped))
        elif path.exists():
            found.append(path)
        else:
            raise RuntimeInputError(f"{str(path)!r} does not exist")
    return found
