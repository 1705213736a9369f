"""Batch sources the training loop iterates: in-memory tensors or a DataLoader.

Both shuffle from ``seed`` and the epoch number alone, so epoch *k* sees the
same order whether or not the run was resumed, and both shard by rank for
distributed training (every rank gets the same number of batches).
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Sequence

from zoo.errors import DataError
from zoo.runtime.skips import SkipReport


def epoch_order(n: int, *, shuffle: bool, seed: int, epoch: int, rank: int = 0, world_size: int = 1,
                pad: bool = True):
    """Indices one rank visits in one epoch: every ``world_size``-th of a seeded permutation.

    With ``pad`` the permutation is first padded (by repeating its start) to a
    multiple of ``world_size``, so every rank gets as many samples, as
    DistributedSampler does; training needs that, since DDP synchronises every
    step. Validation shards without padding so no sample counts twice.
    """
    import torch

    if shuffle:
        g = torch.Generator().manual_seed(_mix(seed, epoch))
        order = torch.randperm(n, generator=g)
    else:
        order = torch.arange(n)
    if world_size > 1 and pad:
        per_rank = -(-n // world_size)
        total = per_rank * world_size
        if total > n:
            order = order.repeat(-(-total // n))[:total]
        order = order[rank::world_size]
    elif world_size > 1:
        order = order[rank::world_size]
    return order


def _mix(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + 12_345) % (2**63 - 1)


class TensorBatches:
    """Batches cut from tensors held in memory: a permutation, then slices; no per-sample work.

    ``x`` is a uint8 image tensor (N, C, H, W) or any float tensor (cached
    features); ``y`` holds the labels. ``resize`` = (H, W) brings each batch
    of images cached at a smaller stored size to the input size.
    """

    def __init__(self, x, y, batch_size: int, *, shuffle: bool = False, drop_last: bool = False,
                 seed: int = 0, rank: int = 0, world_size: int = 1, pad: bool = True,
                 resize: Sequence[int] | None = None) -> None:
        if len(x) != len(y):
            raise DataError(f"{len(x)} inputs but {len(y)} labels")
        if len(x) == 0:
            raise DataError("a split with no samples cannot be batched")
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self.epoch = 0
        self.start_batch = 0
        self.skipped = SkipReport()
        self.resize = tuple(resize) if resize is not None else None

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Choose the permutation of ``epoch`` (call before iterating); begin at batch ``start_batch``."""
        self.epoch = epoch
        self.start_batch = int(start_batch)

    def _shard(self) -> int:
        n = len(self.x)
        return -(-n // self.world_size) if self.pad else len(range(self.rank, n, self.world_size))

    @property
    def num_samples(self) -> int:
        """Samples this rank sees per epoch."""
        n = self._shard()
        return (n // self.batch_size) * self.batch_size if self.drop_last else n

    def to(self, device) -> "TensorBatches":
        """Move the tensors (e.g. the whole uint8 cache onto the GPU when it fits)."""
        self.x, self.y = self.x.to(device), self.y.to(device)
        return self

    def __len__(self) -> int:
        n = self._shard()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        first, self.start_batch = self.start_batch, 0  # a resumed epoch skips its done batches once
        order = epoch_order(len(self.x), shuffle=self.shuffle, seed=self.seed, epoch=self.epoch,
                            rank=self.rank, world_size=self.world_size, pad=self.pad)
        if order.device != self.x.device:
            order = order.to(self.x.device)
        bs = self.batch_size
        stop = (len(order) // bs) * bs if self.drop_last else len(order)
        contiguous = not self.shuffle and self.world_size == 1
        x = self.x
        # index_select returns NCHW-contiguous batches; on the NHWC storage
        # underneath a channels-last cache it keeps the layout instead.
        nhwc = x.ndim == 4 and not x.is_contiguous() and x.permute(0, 2, 3, 1).is_contiguous()
        src = x.permute(0, 2, 3, 1) if nhwc else x
        from zoo.data.decode import resize_batch

        grow = (lambda b: resize_batch(b, self.resize)) if self.resize is not None else (lambda b: b)
        for start in range(first * bs, stop, bs):
            if contiguous:  # a view, no copy
                yield grow(x[start:start + bs]), self.y[start:start + bs]
            else:
                idx = order[start:start + bs]
                batch = src.index_select(0, idx)
                yield grow(batch.permute(0, 3, 1, 2) if nhwc else batch), self.y.index_select(0, idx)


class LoaderBatches:
    """Batches from a DataLoader over a map-style dataset, with a DistributedSampler for shuffling/sharding."""

    def __init__(self, dataset, batch_size: int, *, shuffle: bool = False, drop_last: bool = False,
                 seed: int = 0, rank: int = 0, world_size: int = 1, workers: int | None = None,
                 pin_memory: bool = False, collate=None, pad: bool = True) -> None:
        import torch
        from torch.utils.data import DataLoader, DistributedSampler

        if len(dataset) == 0:
            raise DataError("a split with no samples cannot be batched")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        if pad:
            inner = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle,
                                       seed=seed, drop_last=False)
        else:
            inner = _ShardSampler(len(dataset), rank, world_size)
        self.sampler = _ResumableSampler(inner, int(batch_size))
        workers = default_workers() if workers is None else workers
        self.skipped = SkipReport()  # files the workers could not decode, each counted once
        g = torch.Generator().manual_seed(_mix(seed, rank))
        self.loader = DataLoader(dataset, batch_size=batch_size, sampler=self.sampler, num_workers=workers,
                                 drop_last=drop_last, pin_memory=pin_memory, collate_fn=collate,
                                 persistent_workers=workers > 0, generator=g, worker_init_fn=_ignore_sigint,
                                 prefetch_factor=4 if workers > 0 else None)
        self.collate = collate

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Choose the shuffle of ``epoch`` (call before iterating); begin at batch ``start_batch``."""
        self.sampler.set_epoch(epoch, start_batch)

    @property
    def num_samples(self) -> int:
        """Samples this rank sees per epoch."""
        return len(self.sampler.inner)

    def __len__(self) -> int:
        n, bs = len(self.sampler.inner), self.batch_size
        return n // bs if self.loader.drop_last else -(-n // bs)

    def __iter__(self):
        for batch in self.loader:
            if isinstance(batch, (tuple, list)) and len(batch) == 3:  # collate_skipping
                x, y, skipped = batch
                for item in skipped:
                    self.skipped.add(item.path, item.reason)
                if x is None:
                    continue
                yield x, y
            else:
                yield batch[0], batch[1]


class _ResumableSampler:
    """The inner sampler's indices, from batch ``start_batch`` on for the next pass only.

    Indices are drawn in the main process, so a resumed epoch skips the
    batches it already trained on without decoding them.
    """

    def __init__(self, inner: Any, batch_size: int) -> None:
        self.inner, self.batch_size, self.start = inner, batch_size, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.inner.set_epoch(epoch)
        self.start = int(start_batch) * self.batch_size

    def __iter__(self):
        start, self.start = self.start, 0
        for i, index in enumerate(self.inner):
            if i >= start:
                yield index

    def __len__(self) -> int:
        return max(0, len(self.inner) - self.start)


class _ShardSampler:
    """Every ``world_size``-th index from ``rank``, in order, without padding (validation)."""

    def __init__(self, n: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, n, world_size))

    def set_epoch(self, epoch: int) -> None:
        """The order does not change between epochs."""

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _ignore_sigint(worker_id: int) -> None:
    # Ctrl-C reaches the whole process group; the main process stops the run
    # at a step boundary, so the workers must not die under it first.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_workers() -> int:
    """DataLoader workers for streaming: one per core, at most 8, none on a single core."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if n <= 1 else min(8, n)


def make_batches(data: Any, batch_size: int, *, train: bool, seed: int = 0, rank: int = 0, world_size: int = 1,
                 input_size: Sequence[int] | None = None, augment=None, workers: int | None = None,
                 drop_last: bool = False, pin_memory: bool = False):
    """A batch source for ``data``, which may be:

    * an :class:`zoo.data.ImageSplit` (cached: tensor batches; else a streaming DataLoader,
      with the per-image v2 ``augment`` pipeline when ``train``);
    * a ``(inputs, labels)`` pair of tensors, or a ``TensorDataset`` of two tensors
      (cached features: float inputs pass through unnormalised);
    * any map-style dataset returning ``(input, label)``;
    * a batch source already (anything with ``set_epoch`` and ``__iter__``).
    """
    import torch
    from torch.utils.data import TensorDataset

    from zoo.data.dataset import FileDataset, ImageSplit, collate_skipping

    common = dict(shuffle=train, seed=seed, rank=rank, world_size=world_size, drop_last=drop_last, pad=train)
    if isinstance(data, (TensorBatches, LoaderBatches)) or (hasattr(data, "set_epoch") and hasattr(data, "__iter__")):
        return data
    if isinstance(data, ImageSplit):
        if data.cached:
            return TensorBatches(data.images, data.labels, batch_size, resize=data.size, **common)
        if input_size is None:
            raise DataError("streaming an image split needs its input size")
        from zoo.data.transforms import sample_transform

        transform = sample_transform(augment, tuple(input_size[1:])) if (train and augment) else None
        dataset = FileDataset(data.paths, data.labels.tolist(), input_size, transform)
        return LoaderBatches(dataset, batch_size, workers=workers, pin_memory=pin_memory,
                             collate=collate_skipping, **common)
    if isinstance(data, TensorDataset) and len(data.tensors) == 2:
        data = tuple(data.tensors)
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
        return TensorBatches(x, y.long(), batch_size, **common)
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        return LoaderBatches(data, batch_size, workers=0 if workers is None else workers,
                             pin_memory=pin_memory, **common)
    raise DataError(f"cannot train on {type(data).__name__}: give an image folder, (inputs, labels) tensors or a Dataset")
