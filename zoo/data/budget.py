"""Inference batch sizes from a memory budget, the one rule for finetune, train, evaluate and predict.

A fixed batch of 256 images at 224x224 keeps gigabytes of activations alive
at once (EfficientNet-Lite0: about 4 GB). Instead, one probe image goes
through the model with hooks that note each layer's output size; a batch
may then take as many images as fit ``memory_mb`` at the estimated peak.
In an eager inference forward the live tensors at any moment are the
current layer's input and output plus a kept residual, so the peak per
image is taken as the input plus ``_LIVE`` times the largest layer output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from zoo.errors import DataError

DEFAULT_MEMORY_MB = 512.0  # activations of one inference batch; weights and the decode cache come on top
MAX_BATCH = 256
_LIVE = 4  # largest outputs alive at once (input, output, residual, one spare for the engine's own buffers)


@dataclass(frozen=True)
class Probe:
    """What one image costs a model in inference: peak activation bytes and multiply-adds."""

    activation_bytes: int
    macs: int


def probe(model: Any, input_size: Sequence[int], forward: Callable[[Any], Any] | None = None) -> Probe:
    """Run one zero image of ``input_size`` (C, H, W) through ``forward`` (the model) with size hooks."""
    import torch
    from torch import nn

    c, h, w = (int(v) for v in input_size)
    largest, macs = [0], [0]

    def note(module: Any, _inputs: Any, output: Any) -> None:
        outs = [t for t in (output if isinstance(output, (tuple, list)) else (output,)) if isinstance(t, torch.Tensor)]
        for t in outs:
            largest[0] = max(largest[0], t.numel() * 4)  # float32, whatever the probe's dtype
        if isinstance(module, nn.Conv2d) and outs:
            kh, kw = module.kernel_size
            macs[0] += outs[0].numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear) and outs:
            macs[0] += outs[0].numel() * module.in_features

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(note) for m in leaves]
    was = model.training
    try:
        model.eval()
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        with torch.inference_mode():
            (forward or model)(torch.zeros(1, c, h, w, device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was)
    return Probe(c * h * w * 4 + _LIVE * largest[0], macs[0])


def activation_bytes(model: Any, input_size: Sequence[int], forward: Callable[[Any], Any] | None = None) -> int:
    """Estimated peak bytes of activations for one image of ``input_size`` (C, H, W) in inference."""
    return probe(model, input_size, forward).activation_bytes


def budget_batch_size(
    model: Any,
    input_size: Sequence[int],
    memory_mb: float | None = None,
    *,
    forward: Callable[[Any], Any] | None = None,
    cap: int = MAX_BATCH,
    option: str = "--memory-mb",
) -> int:
    """The largest inference batch (at most ``cap``) whose activations fit ``memory_mb``.

    A budget too small for even one image is a :class:`DataError` naming ``option``.
    """
    budget = DEFAULT_MEMORY_MB if memory_mb is None else float(memory_mb)
    per_image = activation_bytes(model, input_size, forward)
    fits = int(budget * 2**20 // per_image) if budget > 0 else 0
    if fits < 1:
        _, h, w = (int(v) for v in input_size)
        raise DataError(
            f"{option} {budget:g} is too small for one {h}x{w} image through this model"
            f" (about {per_image / 2**20:.1f} MB of activations); raise {option}"
        )
    return max(1, min(int(cap), fits))


_M_MMAP_THRESHOLD = -3  # glibc's malloc.h


HEAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling for its own moving threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)


def let_batches_on_the_heap() -> bool:
    """Undo :func:`keep_batches_off_the_heap` for training a whole network: blocks up to 32 MB from the heap again.

    With a 1 MB threshold every activation and gradient of a training step
    is its own mmap, zeroed by the kernel page by page: measured, LP-FT's
    EfficientNet-Lite0 at 160x160 trained at 20-22 img/s under it and 31
    img/s without. 32 MB is where glibc's own threshold ends up in a long
    run, fixed from the start. Returns whether it applied (glibc only).
    """
    return _set_mmap_threshold(HEAP_THRESHOLD_MAX)


def keep_batches_off_the_heap(threshold: int = 1 << 20) -> bool:
    """Have glibc serve allocations over ``threshold`` bytes from mmap, so a freed batch goes back to the OS.

    glibc raises its mmap threshold to the largest block freed so far (up to
    32 MB), after which every batch-sized buffer lands on a heap that
    fragments: measured, ``zoo finetune`` of EfficientNet-Lite0 at 224x224
    grew by about one 16 MB batch every batch (6.2 GB after 10,000 images);
    with a fixed threshold it stays flat. Returns whether it applied (glibc only).

    It is process-wide and cannot be read back (so not restored): the ``zoo
    finetune`` command calls it for its own process; library calls do not.
    """
    return _set_mmap_threshold(threshold)


def _set_mmap_threshold(threshold: int) -> bool:
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)))
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
