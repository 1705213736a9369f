"""Image preprocessing in numpy and pillow, the evaluation path of zoo.data.

The contract (docs: notes/preprocess.md) is: open with PIL, convert to "RGB"
(or "L" for one channel), resize to exactly (H, W) with bilinear filtering and
no crop, scale to float32 in [0, 1], lay out CHW, normalise with mean/std.
The arithmetic below follows torchvision's ``to_tensor`` then ``Normalize``
step by step in float32, so both paths give the same numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import RuntimeInputError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


@dataclass(frozen=True)
class Preprocessing:
    """What turns an image file into the model's input: channels, size, normalisation."""

    in_chans: int
    height: int
    width: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.in_chans not in (1, 3):
            raise RuntimeInputError(f"images can be fed to 1- or 3-channel models, not {self.in_chans}-channel ones")
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
        return "L" if self.in_chans == 1 else "RGB"

    @property
    def input_size(self) -> tuple[int, int, int]:
        return (self.in_chans, self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        return {"input_size": list(self.input_size), "mean": list(self.mean), "std": list(self.std)}

    # -- the steps -----------------------------------------------------------------

    def image_to_array(self, image: Any) -> np.ndarray:
        """A PIL image -> float32 CHW array, normalised."""
        from PIL import Image

        if image.mode != self.mode:
            image = image.convert(self.mode)  # drops alpha, expands palettes, CMYK -> RGB
        if image.size != (self.width, self.height):
            image = image.resize((self.width, self.height), Image.BILINEAR)
        pixels = np.asarray(image, dtype=np.uint8)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        x = pixels.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(-1, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(-1, 1, 1)
        return (x - mean) / std

    def load(self, path: str | os.PathLike) -> np.ndarray:
        """Read one image file and preprocess it."""
        return self.image_to_array(open_image(path))

    def load_batch(self, paths: Sequence[str | os.PathLike]) -> np.ndarray:
        """Read image files into one ``(N, C, H, W)`` float32 batch."""
        batch = np.empty((len(paths), self.in_chans, self.height, self.width), dtype=np.float32)
        for i, path in enumerate(paths):
            batch[i] = self.load(path)
        return batch

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


def open_image(path: str | os.PathLike) -> Any:
    """Open an image file with PIL and decode it now, with a clear error when it is not one."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()  # decode now, so a truncated file fails here and not later
    except FileNotFoundError:
        raise RuntimeInputError(f"image {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise RuntimeInputError(f"{str(path)!r} is a folder; pass it as a folder input instead") from None
    except UnidentifiedImageError:
        raise RuntimeInputError(f"{str(path)!r} is not an image file pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise RuntimeInputError(f"cannot decode image {str(path)!r} (corrupt or truncated?): {exc}") from None
    return image


def list_images(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (recursively, sorted) into image paths."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            )
        elif path.exists():
            found.append(path)
        else:
            raise RuntimeInputError(f"{str(path)!r} does not exist")
    return found
