"""Image folders in memory (a uint8 cache) or on disk (streamed by DataLoader workers)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from zoo.data.decode import ImageReadError, decode_many, decode_uint8
from zoo.data.folder import FileSplit, find_layout
from zoo.errors import DataError
from zoo.runtime.skips import SkipReport

DEFAULT_CACHE_BUDGET_MB = 1024


@dataclass
class ImageSplit:
    """One split: file paths, labels, and the decoded uint8 images (N, C, H, W) when cached."""

    paths: list[Path]
    labels: Any  # torch.LongTensor (N,)
    images: Any = None  # torch.uint8 (N, C, H, W), or None when streaming

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def cached(self) -> bool:
        """Whether the images are decoded in memory."""
        return self.images is not None


@dataclass
class ImageData:
    """An image folder ready for training: splits, class names, input size and what was skipped."""

    root: Path
    class_names: list[str]
    input_size: tuple[int, int, int]
    train: ImageSplit
    val: ImageSplit | None
    skipped: SkipReport = field(default_factory=SkipReport)  # reason -> count, with the files' names

    @property
    def num_classes(self) -> int:
        """How many classes (folders) the data has."""
        return len(self.class_names)

    @property
    def cached(self) -> bool:
        """Whether the training images are decoded in memory."""
        return self.train.cached

    def describe_skipped(self) -> str:
        """'skipped 2 files (1 corrupt, 1 not an image): a/x.jpg (corrupt), ...', or '' when nothing was."""
        return self.skipped.describe()


def cache_bytes(n_images: int, input_size: Sequence[int]) -> int:
    """Bytes the uint8 cache of ``n_images`` images of ``input_size`` takes."""
    c, h, w = input_size
    return int(n_images) * int(c) * int(h) * int(w)


def load_image_data(
    data: str | os.PathLike,
    input_size: Sequence[int],
    *,
    val_split: float | None = 0.1,
    seed: int = 0,
    cache: bool | str = "auto",
    cache_budget_mb: float = DEFAULT_CACHE_BUDGET_MB,
    threads: int | None = None,
    verbose: bool = False,
) -> ImageData:
    """Find the class folders of ``data`` and decode them into memory if they fit ``cache_budget_mb``.

    ``input_size`` is (C, H, W): every image is converted to RGB (or L) and
    resized to (H, W) with bilinear, as the preprocessing contract says.
    ``cache`` is ``"auto"`` (cache when it fits), ``True`` (always) or
    ``False`` (always stream). Files that are not images, and images that
    cannot be decoded, are skipped and recorded in ``ImageData.skipped``.
    """
    import torch

    c, h, w = (int(v) for v in input_size)
    layout = find_layout(data, val_split=val_split, seed=seed)
    skipped = SkipReport().update(layout.skipped)
    total = len(layout.train) + (len(layout.val) if layout.val else 0)
    need = cache_bytes(total, (c, h, w))
    use_cache = bool(cache) if cache != "auto" else need <= cache_budget_mb * 2**20
    if cache == "auto" and not use_cache and verbose:
        print(f"zoo: {total:,} images at {h}x{w} need {need / 2**20:,.0f} MB, over --cache-mb {cache_budget_mb:g}:"
              " streaming them from disk", file=sys.stderr, flush=True)
    if cache is True and need > cache_budget_mb * 2**20:
        raise DataError(
            f"caching {total} images needs {need / 2**20:.0f} MB, over the {cache_budget_mb:g} MB budget;"
            " raise --cache-mb or use --no-cache to stream"
        )

    def build(files: FileSplit, name: str) -> ImageSplit:
        if not use_cache:
            return ImageSplit(list(files.paths), torch.tensor(files.labels, dtype=torch.long))
        report = None
        if verbose and len(files) >= 2000:
            def report(done: int) -> None:
                print(f"\rdecoding {name}: {done}/{len(files)}", end="", file=sys.stderr, flush=True)
        images, kept, bad = decode_many(files.paths, c, (h, w), threads=threads, progress=report)
        if report is not None:
            print(file=sys.stderr)
        skipped.update(bad)
        paths = [files.paths[i] for i in kept]
        labels = torch.tensor([files.labels[i] for i in kept], dtype=torch.long)
        return ImageSplit(paths, labels, images)

    train = build(layout.train, "train")
    val = build(layout.val, "val") if layout.val is not None else None
    if len(train) == 0:
        raise DataError(f"none of the {len(layout.train)} training images under {str(layout.root)!r} could be read:"
                        f" {skipped.describe()}")
    if len(set(train.labels.tolist())) < 2:
        raise DataError(f"after skipping unreadable files only one class is left under {str(layout.root)!r}")
    if val is not None and len(val) == 0:
        val = None
    return ImageData(layout.root, layout.class_names, (c, h, w), train, val, skipped)


@dataclass(frozen=True)
class Skipped:
    """A file a DataLoader worker could not decode (sent back to the main process in its batch)."""

    path: str
    reason: str


class FileDataset:
    """A map-style dataset that decodes one image per item (for DataLoader workers).

    Returns ``(uint8 CHW tensor, label)``, or a :class:`Skipped` marker for a
    file that cannot be decoded: :func:`collate_skipping` drops those and names them.
    """

    def __init__(self, paths: Sequence[Path], labels: Sequence[int], input_size: Sequence[int],
                 transform: Callable[[Any], Any] | None = None) -> None:
        self.paths = list(paths)
        self.labels = [int(v) for v in labels]
        self.in_chans, self.size = int(input_size[0]), (int(input_size[1]), int(input_size[2]))
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        import torch

        try:
            arr = decode_uint8(self.paths[index], self.in_chans, self.size)
        except ImageReadError as exc:
            return Skipped(str(self.paths[index]), exc.reason)
        x = torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()
        if self.transform is not None:
            x = self.transform(x)
        return x, self.labels[index]


def collate_skipping(items: list[Any]):
    """Stack ``(x, y)`` items into a batch, dropping the undecodable ones.

    Returns ``(x, y, skipped)`` where ``skipped`` lists the :class:`Skipped`
    items; ``x`` is None when every item of the batch failed.
    """
    import torch

    good = [it for it in items if not isinstance(it, Skipped)]
    skipped = [it for it in items if isinstance(it, Skipped)]
    if not good:
        return None, None, skipped
    xs = torch.stack([it[0] for it in good])
    ys = torch.tensor([int(it[1]) for it in good], dtype=torch.long)
    return xs, ys, skipped
