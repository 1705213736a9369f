"""Feature caching: with the backbone frozen and no augmentation, a backbone
forward pass gives the same pre-logit features every epoch, so they are
computed once and the head trains on the cached tensors (a linear layer or a
small MLP: milliseconds per epoch instead of a full forward pass).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Any, Iterator, Sequence

import torch
from torch import nn


def can_cache_features(model: nn.Module, augment: Any, bn_policy: str = "frozen") -> tuple[bool, str]:
    """Whether cached features are exact for this run, and why not when they are not."""
    from zoo.transfer.freeze import head_param_names

    if augment:
        return False, "augmentation is on (each epoch sees other inputs)"
    head = set(head_param_names(model))
    if not head:
        return False, "the model has no separate classifier"
    trainable = [n for n, p in model.named_parameters() if p.requires_grad and n not in head]
    if trainable:
        return False, f"part of the backbone trains ({trainable[0]}, ...)"
    if bn_policy != "frozen":
        return False, "BatchNorm policy 'train' moves running statistics"
    return True, ""


def head_matches_pre_logits(model: nn.Module, sample: torch.Tensor) -> bool:
    """True when ``forward == classifier(pre_logits)`` for this model (checked on one batch)."""
    head = model.get_classifier()
    was = model.training
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(sample)
        full = model.forward_head(feats)
        via = head(model.forward_head(feats, pre_logits=True))
    model.train(was)
    return full.shape == via.shape and torch.allclose(full, via, atol=1e-4, rtol=1e-4)


@torch.no_grad()
def extract_features(
    model: nn.Module,
    images: torch.Tensor,
    *,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: Any = None,
    engine: Any = None,
    size: Sequence[int] | None = None,
) -> torch.Tensor:
    """Pre-logit features ``forward_head(forward_features(x), pre_logits=True)`` of uint8 images, in eval mode.

    ``engine`` (from :func:`zoo.transfer.engine.choose_engine`) computes them instead of the model's own forward;
    ``size`` = (H, W) resizes images cached at a smaller stored size, batch by batch.
    """
    from zoo.data.decode import resize_batch
    from zoo.data.transforms import Normalize

    normalise = Normalize(mean, std)
    was = model.training
    model.eval()
    out = []
    # Batches are sized from a memory budget by the caller; channels-last runs CPU convolutions
    # faster on the PyTorch path, and is undone afterwards (neither changes what is computed).
    with channels_last(model, device) if engine is None else nullcontext():
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].to(device)
            x = normalise(resize_batch(x, size) if size is not None else x)
            if engine is not None:
                out.append(engine(x))
            else:
                if x.ndim == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                out.append(model.forward_head(model.forward_features(x), pre_logits=True).float().cpu())
            if progress is not None:
                progress(min(start + batch_size, len(images)), len(images))
    model.train(was)
    return torch.cat(out) if out else torch.empty(0, int(getattr(model, "num_features", 0)))


@contextmanager
def channels_last(model: nn.Module, device: str | torch.device = "cpu") -> Iterator[None]:
    """Run ``model`` in channels-last memory format on the CPU, then put its weights back as they were."""
    if torch.device(device).type != "cpu" or not any(p.ndim == 4 for p in model.parameters()):
        yield
        return
    model.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        model.to(memory_format=torch.contiguous_format)


@torch.no_grad()
def extract_split_features(model: nn.Module, split: Any, input_size: Sequence[int], *, mean, std,
                           batch_size: int = 256, device: str | torch.device = "cpu", progress: Any = None,
                           engine: Any = None, skipped: Any = None):
    """``(features, labels)`` of a :class:`zoo.data.ImageSplit`, cached or streamed.

    A split that is not cached is decoded batch by batch and each batch of
    images is dropped once its features exist, so memory does not grow with
    the folder: with an engine of several lanes each lane decodes its part
    and runs it, otherwise the next batch decodes in threads while this one
    runs. Files that cannot be read by then go into ``skipped``.
    """
    from zoo.data.transforms import Normalize

    if split.images is not None:
        return extract_features(model, split.images, mean=mean, std=std, batch_size=batch_size,
                                device=device, progress=progress, engine=engine, size=split.size), split.labels
    chunks, kept_all = [], []
    size = (int(input_size[1]), int(input_size[2]))
    lanes = int(getattr(engine, "lanes", 1))
    stream = (_decoded_in_lanes(split.paths, int(input_size[0]), size, batch_size, engine, _numpy_normalise(mean, std))
              if lanes > 1 else _decoded_ahead(model, split.paths, int(input_size[0]), size, batch_size,
                                               mean=mean, std=std, device=device, engine=engine))
    for done, feats, kept, bad in stream:
        if skipped is not None:
            skipped.update(bad)
        if kept:
            chunks.append(feats)
            kept_all.extend(kept)
        if progress is not None:
            progress(min(len(split), done), len(split))
    labels = split.labels[torch.tensor(kept_all, dtype=torch.long)] if kept_all else split.labels[:0]
    width = int(getattr(model, "num_features", 0))
    return (torch.cat(chunks) if chunks else torch.empty(0, width)), labels


def _decoded_ahead(model: nn.Module, paths: Sequence[Any], in_chans: int, size: tuple[int, int], batch_size: int,
                   **extract: Any) -> Iterator[tuple[int, Any, list[int], Any]]:
    """``(files done, features, kept, skipped)`` per chunk: the next chunk decodes in threads while this one runs."""
    from zoo.data.decode import stream_decoded

    for i, (images, kept, bad) in enumerate(stream_decoded(paths, in_chans, size, chunk=batch_size), 1):
        feats = extract_features(model, images, batch_size=batch_size, **extract) if kept else None
        del images
        yield i * batch_size, feats, kept, bad


def _decoded_in_lanes(paths: Sequence[Any], in_chans: int, size: tuple[int, int], batch_size: int, engine: Any,
                      normalise: Any) -> Iterator[tuple[int, Any, list[int], Any]]:
    """``(files done, features, kept, skipped)`` per part, each lane decoding its part and running it.

    The batch is cut into ``engine.lanes`` parts; each lane (a thread) decodes
    its part with one thread and runs it through the engine's single-threaded
    session, so every core always has decoding or inference to do, with no
    thread waiting for another. At most one part per lane is alive at once
    (features are kept, images are not), in file order.
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor
    from itertools import islice

    from zoo.data.decode import decode_many

    lanes = int(engine.lanes)
    part = max(1, -(-int(batch_size) // lanes))

    def work(start: int):
        images, kept, bad = decode_many(paths[start:start + part], in_chans, size, threads=1)
        feats = engine.run_one(normalise(images)) if kept else None  # numpy: no torch threads per lane
        return min(len(paths), start + part), feats, [start + i for i in kept], bad

    starts = iter(range(0, len(paths), part))
    with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="zoo-lane") as pool:
        pending = deque(pool.submit(work, s) for s in islice(starts, lanes))  # zip() would eat one more start
        while pending:
            done = pending.popleft().result()
            nxt = next(starts, None)
            if nxt is not None:
                pending.append(pool.submit(work, nxt))
            yield done


def _numpy_normalise(mean: Sequence[float], std: Sequence[float]):
    """uint8 (N, C, H, W) -> ``(x / 255 - mean) / std`` float32 in numpy, which keeps to the calling thread.

    The same arithmetic as :class:`zoo.data.transforms.Normalize`; torch's
    would start its intra-op threads in every lane at once.
    """
    import numpy as np

    scale = (1.0 / (255.0 * np.asarray(std, dtype=np.float32))).reshape(1, -1, 1, 1)
    shift = (-np.asarray(mean, dtype=np.float32) / np.asarray(std, dtype=np.float32)).reshape(1, -1, 1, 1)

    def normalise(images: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(images.numpy(), dtype=np.float32)
        x *= scale
        x += shift
        return torch.from_numpy(x)

    return normalise
