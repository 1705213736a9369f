"""Image folders in memory (a uint8 cache) or on disk (streamed by DataLoader workers)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from zoo.data.decode import (ESTIMATE_FROM, ImageReadError, OtherSize, PassEstimate, cache_size, decode_stored,
                             decode_uint8)
from zoo.data.folder import FileSplit, find_layout
from zoo.data.table import TableColumns, label_tensor
from zoo.errors import DataError
from zoo.runtime.skips import SkipReport

DEFAULT_CACHE_BUDGET_MB = 1024


@dataclass
class ImageSplit:
    """One split: file paths, labels, and the decoded uint8 images (N, C, H, W) when cached."""

    paths: list[Path]
    labels: Any  # torch.LongTensor (N,)
    images: Any = None  # torch.uint8 (N, C, h, w), or None when streaming
    size: tuple[int, int] | None = None  # the input (H, W) batches are resized to, when the cache is smaller

    def batch(self, start: int, stop: int):
        """Cached images ``start:stop`` at the input size (resized from their stored size when it differs)."""
        from zoo.data.decode import resize_batch

        images = self.images[start:stop]
        return resize_batch(images, self.size) if self.size is not None else images

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
    multi_label: bool = False  # labels are multi-hot rows (a table read with --multi-label)

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


def refuse_unreadable(total: int, labels: Any, skipped: SkipReport, root: Any, *, multi_label: bool = False) -> None:
    """Raise :class:`DataError` when none of ``total`` training images was read (``labels`` of those that were
    is empty), or when those left hold a single class (single-label data only); the message names the skips."""
    if len(labels) == 0:
        raise DataError(f"none of the {total} training images under {str(root)!r} could be read: {skipped.describe()}")
    if not multi_label and len(set(labels.tolist())) < 2:
        raise DataError(f"after skipping unreadable files only one class is left under {str(root)!r}")


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
    columns: TableColumns | None = None,
) -> ImageData:
    """Find the class folders of ``data`` and decode them into memory if they fit ``cache_budget_mb``.

    ``input_size`` is (C, H, W): every image is converted to RGB (or L) and
    resized to (H, W) with bilinear, as the preprocessing contract says. The
    cache never holds upsampled copies: images that share a stored size no
    larger than (H, W) are kept at it and each batch is resized
    (:func:`zoo.data.decode.decode_stored`).
    ``cache`` is ``"auto"`` (cache when it fits), ``True`` (always) or
    ``False`` (always stream). Files that are not images, and images that
    cannot be decoded, are skipped and recorded in ``ImageData.skipped``.
    ``data`` may be a .csv/.tsv table (:mod:`zoo.data.table`; ``columns`` names its columns).
    """
    c, h, w = (int(v) for v in input_size)
    layout = find_layout(data, val_split=val_split, seed=seed, columns=columns)
    multi, k = layout.multi_label, len(layout.class_names)
    skipped = SkipReport().update(layout.skipped)
    total = len(layout.train) + (len(layout.val) if layout.val else 0)
    stored = cache_size(layout.train.paths, c, (h, w)) if cache is not False else (h, w)
    need = cache_bytes(total, (c, *stored))
    use_cache = bool(cache) if cache != "auto" else need <= cache_budget_mb * 2**20
    if cache == "auto" and not use_cache and verbose:
        print(f"zoo: {total:,} images at {stored[0]}x{stored[1]} need {need / 2**20:,.0f} MB,"
              f" over --cache-mb {cache_budget_mb:g}:"
              " streaming them from disk", file=sys.stderr, flush=True)
    if cache is True and need > cache_budget_mb * 2**20:
        raise DataError(
            f"caching {total} images needs {need / 2**20:.0f} MB, over the {cache_budget_mb:g} MB budget;"
            " raise --cache-mb or use --no-cache to stream"
        )

    def build(files: FileSplit, name: str) -> ImageSplit:
        if not use_cache:
            return ImageSplit(list(files.paths), label_tensor(files.labels, k, multi))
        report = None
        if verbose and len(files) >= ESTIMATE_FROM:
            estimate = PassEstimate(f"caching the {name} split,", len(files))

            def report(done: int) -> None:
                estimate(done)
        try:
            # A mixed folder decoded at (H, W) may not fit the budget that its first images promised.
            fits = cache is True or cache_bytes(total, (c, h, w)) <= cache_budget_mb * 2**20
            images, kept, bad, got = decode_stored(files.paths, c, (h, w), stored=stored, fall_back=fits,
                                                   threads=threads, progress=report)
        except OtherSize:
            if verbose:
                print(f"\nzoo: the images under {str(layout.root)!r} have several sizes and do not fit"
                      f" --cache-mb {cache_budget_mb:g} at {h}x{w}: streaming them from disk", file=sys.stderr)
            return ImageSplit(list(files.paths), label_tensor(files.labels, k, multi))
        skipped.update(bad)
        paths = [files.paths[i] for i in kept]
        labels = label_tensor([files.labels[i] for i in kept], k, multi)
        return ImageSplit(paths, labels, images, (h, w) if got != (h, w) else None)

    train = build(layout.train, "train")
    val = build(layout.val, "val") if layout.val is not None else None
    refuse_unreadable(len(layout.train), train.labels, skipped, layout.root, multi_label=multi)
    if val is not None and len(val) == 0:
        val = None
    return ImageData(layout.root, layout.class_names, (c, h, w), train, val, skipped, multi_label=multi)


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
        self.labels = [v if isinstance(v, (list, tuple)) else int(v) for v in labels]  # multi-hot rows stay rows
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
    if isinstance(good[0][1], (list, tuple)):  # multi-hot rows
        ys = torch.tensor([list(it[1]) for it in good], dtype=torch.float32)
    else:
        ys = torch.tensor([int(it[1]) for it in good], dtype=torch.long)
    return xs, ys, skipped
