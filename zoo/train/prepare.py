"""Turning what the caller passed into what the loop needs: splits, labels, input size, mean/std."""

from __future__ import annotations

from typing import Any, Sequence

from zoo.errors import DataError, ZooError
from zoo.registry import model_info


def labels_of(data: Any):
    """The label tensor of a split, ``(inputs, labels)`` pair or two-tensor dataset; None otherwise."""
    import torch
    from torch.utils.data import TensorDataset

    from zoo.data.dataset import ImageSplit

    if isinstance(data, ImageSplit):
        return data.labels
    if isinstance(data, TensorDataset) and len(data.tensors) == 2:
        return data.tensors[1]
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[1], torch.Tensor):
        return data[1]
    return None


def unpack_data(train_data: Any, val_data: Any, class_names: Sequence[str] | None,
                input_size: Sequence[int] | None) -> tuple[Any, Any, list[str], Any, dict[str, int], str | None]:
    """``(train, val, class_names, input_size, skipped, data_root)`` from what a Trainer was handed.

    An :class:`zoo.data.ImageData` brings its splits, classes, size and skipped
    files; tensors and datasets without class names get "0".."K-1" from their labels.
    """
    from zoo.data.dataset import ImageData

    skipped: dict[str, int] = {}
    root = None
    if isinstance(train_data, ImageData):
        val_data = train_data.val if val_data is None else val_data
        class_names = class_names or train_data.class_names
        input_size = input_size or train_data.input_size
        skipped, root = train_data.skipped, str(train_data.root)
        train_data = train_data.train
    if class_names is None:
        labels = labels_of(train_data)
        if labels is None:
            raise DataError("pass class_names= when training on a dataset without labels tensor")
        class_names = [str(i) for i in range(int(labels.max()) + 1)] if len(labels) else []
    return train_data, val_data, list(class_names), input_size, skipped, root


def length(data: Any) -> int | None:
    """How many samples ``data`` holds, when it can tell."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and hasattr(data[1], "shape"):
        return int(data[1].shape[0])  # (inputs, labels)
    return len(data) if hasattr(data, "__len__") else None


def default_input_size(model: Any, requested: Sequence[int] | None) -> tuple[int, ...] | None:
    """The requested size, else the spec's (with the model's channel count)."""
    if requested is not None:
        return tuple(int(v) for v in requested)
    info = model_info(model)
    if info is None:
        return None
    from zoo.plugins import get_spec

    return (int(info.in_chans), *get_spec(info.name).input_size[1:])


def choose_mean_std(train_data: Any, model: Any, normalize: str, input_size: Sequence[int] | None):
    """Mean/std for the inputs: the data's (``dataset``) or the model's own (``model``); None for prepared tensors."""
    from zoo.data.dataset import ImageSplit
    from zoo.data.transforms import compute_mean_std

    if not isinstance(train_data, ImageSplit):
        x = train_data[0] if isinstance(train_data, (tuple, list)) else None
        if x is not None and getattr(x, "dtype", None) is not None and str(x.dtype) == "torch.uint8" and x.ndim == 4:
            return compute_mean_std(x)  # uint8 image tensors: like a cached folder
        return None, None  # float tensors or a Dataset arrive prepared: nothing to normalise
    info = model_info(model)
    if normalize == "model":
        if info is None:
            raise ZooError(
                "normalize='model' takes the mean/std of the model's spec, but this model was not built by"
                " zoo.create_model; pass mean= and std=, or use normalize='dataset'"
            )
        from zoo.plugins import get_spec

        spec = get_spec(info.name)
        return list(spec.mean), list(spec.std)
    if train_data.cached:
        return compute_mean_std(train_data.images)
    return sample_mean_std(train_data, input_size)


def sample_mean_std(split: Any, input_size: Sequence[int] | None, limit: int = 2000):
    """Mean/std from up to ``limit`` evenly spaced training images (for data too large to cache)."""
    from zoo.data.decode import decode_many
    from zoo.data.transforms import compute_mean_std

    if input_size is None:
        raise DataError("the model's input size is unknown; pass input_size")
    step = max(1, len(split.paths) // limit)
    images, _, _ = decode_many(split.paths[::step][:limit], int(input_size[0]), (int(input_size[1]), int(input_size[2])))
    if len(images) == 0:
        raise DataError("none of the sampled training images could be read")
    return compute_mean_std(images)


def place(cfg: Any, dist: Any) -> tuple[Any, bool, Any, bool]:
    """The device (joined to the process group), AMP on/off and dtype, and channels-last for a run."""
    import torch

    from zoo.devices import autocast_choice, select_device

    device = select_device(cfg.device)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank % max(1, torch.cuda.device_count()))
        torch.cuda.set_device(device)
    dist.init(device)
    amp, amp_dtype = autocast_choice(device, cfg.amp, announce=dist.rank == 0)
    # Channels-last convolutions are faster on CUDA, and on CPU with oneDNN too.
    channels_last = cfg.channels_last if cfg.channels_last is not None else device.type in ("cuda", "cpu")
    return device, amp, amp_dtype, channels_last


def make_run_batches(trainer: Any) -> tuple[Any, Any]:
    """The training and validation batch sources of a trainer, sharded by rank."""
    from zoo.data.batches import TensorBatches, make_batches

    cfg = trainer.config
    rank, world, pin = trainer.dist.rank, trainer.dist.world_size, trainer.device.type == "cuda"
    train = make_batches(trainer.train_data, cfg.batch_size, train=True, seed=cfg.seed, rank=rank, world_size=world,
                         input_size=trainer.input_size, augment=trainer.augs, workers=cfg.workers, pin_memory=pin)
    val = None
    if trainer.val_data is not None:
        val = make_batches(trainer.val_data, cfg.val_batch_size or _val_batch_size(trainer), train=False, seed=cfg.seed,
                           rank=rank, world_size=world, input_size=trainer.input_size, workers=cfg.workers,
                           pin_memory=pin)
    if trainer.device.type == "cuda":
        # Small caches live on the GPU: batches are then cut without host copies.
        for batches in (train, val):
            if isinstance(batches, TensorBatches) and batches.x.numel() * batches.x.element_size() < 2**31:
                batches.to(trainer.device)
    return train, val


def _val_batch_size(trainer: Any) -> int:
    """Twice the training batch, or fewer when one inference batch of images would not fit ``memory_mb``."""
    from zoo.data.dataset import ImageSplit

    cfg = trainer.config
    if not isinstance(trainer.val_data, ImageSplit) or not trainer.input_size:
        return 2 * cfg.batch_size  # cached features or tensors: nothing large flows through the model
    from zoo.data.budget import budget_batch_size

    return budget_batch_size(trainer.forward_module, trainer.input_size, cfg.memory_mb, cap=2 * cfg.batch_size)


# Multiply-adds per image below which one CPU thread trains fastest: splitting
# such small operators across cores costs more in synchronisation than it
# gains, and on a shared machine a descheduled second thread stalls every
# operator (benchmarks/cpu_train_step.py measured it; docs/training.md has the figures).
ONE_THREAD_MACS = 30_000_000


def default_threads(model: Any, forward_module: Any, input_size: Sequence[int] | None) -> int | None:
    """1 for small networks (and heads on cached features), None (torch's default, all cores) otherwise."""
    if forward_module is not model:
        return 1  # a head on cached features: a matrix product per batch
    if not input_size:
        return None
    from zoo.data.budget import probe

    try:
        return 1 if probe(model, input_size).macs < ONE_THREAD_MACS else None
    except Exception:  # a model the probe cannot run at this size: leave torch's choice
        return None


# bf16 autocast is kept on a CPU with bfloat16 units only if a timed training step says it pays: it doubles
# a ResNet's step there but slows EfficientNet-Lite0 (depthwise convolutions) by about 15%
# (benchmarks/cpu_train_step.py; docs/training.md has the figures).
BF16_MIN_GAIN = 1.1  # bf16 must train at least this many times as fast as float32 to be kept
PROBE_BATCH = 16


def bf16_pays(model: Any, input_size: Sequence[int], batch_size: int, *,
              channels_last: bool) -> tuple[bool, float, float]:
    """``(keep bf16, float32 img/s, bf16 img/s)`` from forward + backward steps of ``model`` on random images.

    The steps alternate (float32, bf16, twice after one warm-up each) and the
    fastest of each counts. The model is left as it was: weights, BatchNorm
    statistics, gradients, train/eval mode, and the global random state.
    """
    import copy
    import time

    import torch

    n = max(2, min(int(batch_size), PROBE_BATCH))
    saved = copy.deepcopy(model.state_dict())
    grads = {name: (None if p.grad is None else p.grad.detach().clone()) for name, p in model.named_parameters()}
    was = model.training
    times: dict[bool, list[float]] = {False: [], True: []}
    try:
        with torch.random.fork_rng(devices=[]):
            x = torch.randn(n, *[int(v) for v in input_size])
            if channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            model.train()
            for rep in range(3):
                for bf16 in (False, True):
                    start = time.perf_counter()
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                        out = model(x)
                    out = out[0] if isinstance(out, (tuple, list)) else out
                    out.float().square().mean().backward()
                    if rep:  # the first of each is the warm-up (oneDNN builds its kernels)
                        times[bf16].append(time.perf_counter() - start)
    finally:
        model.load_state_dict(saved)
        for name, p in model.named_parameters():
            p.grad = grads[name]
        model.train(was)
    fp32, bf16 = n / min(times[False]), n / min(times[True])
    return bf16 >= BF16_MIN_GAIN * fp32, fp32, bf16
