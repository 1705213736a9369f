"""``zoo finetune``: pretrained backbone, new head, frozen layers, then the training engine.

:func:`prepare` builds the model (registry name with pretrained weights, a zoo
checkpoint, or an autoencoder's encoder), swaps the head for the data's
classes, freezes, and makes per-stage parameter groups; :func:`finetune`
then trains with :class:`zoo.train.Trainer`. When nothing below the head
trains and augmentation is off, the backbone's features are computed once
and the head trains on them (the checkpoint still holds the whole model).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from zoo.checkpoint import LOCAL_DIR, timm_folder_config
from zoo.errors import ZooError
from zoo.io import claim_run_dir
from zoo.registry import model_info
from zoo.train.scope import restores_process
from zoo.transfer.defaults import FINETUNE_TRAIN_DEFAULTS, FinetuneOptions, finetune_config

# FINETUNE_TRAIN_DEFAULTS, FinetuneOptions and finetune_config live in zoo.transfer.defaults; importable here too.
__all__ = ["FINETUNE_TRAIN_DEFAULTS", "FinetuneOptions", "Prepared", "build_backbone", "describe_plan", "finetune",
           "finetune_config", "is_checkpoint", "prepare", "unfreeze_schedule"]


@dataclass
class Prepared:
    """A model ready to finetune, and what went into it."""

    model: Any
    source: str  # what was finetuned: a registry name, a checkpoint, an encoder
    weights_from: str  # where the pretrained weights came from
    mean: list[float] | None
    std: list[float] | None
    input_size: tuple[int, int, int] | None
    freeze: Any  # zoo.transfer.freeze.FreezeResult
    groups: list[Any]  # zoo.transfer.freeze.ParamGroup
    head: Any  # zoo.transfer.heads.HeadSpec


def is_checkpoint(source: str) -> bool:
    """A path to a zoo checkpoint directory or a zoo ``.safetensors`` file (not a registry name)."""
    path = Path(source)
    return path.is_dir() or (path.is_file() and path.suffix == ".safetensors")


def _timm_folder(source: str) -> str | None:
    """The folder of ``local-dir:PATH`` or of a bare timm model folder; None for other sources."""
    if source.startswith(LOCAL_DIR):
        return source[len(LOCAL_DIR):]
    return source if timm_folder_config(source) is not None else None


def build_backbone(source: str | None, num_classes: int, options: FinetuneOptions,
                   model_args: dict[str, Any] | None = None) -> tuple[Any, str, str, dict[str, Any]]:
    """The pretrained model with a classifier for ``num_classes``: ``(model, source, weights_from, norm)``."""
    from zoo.factory import create_model

    if options.encoder:
        from zoo.transfer.encoder import encoder_classifier

        if source:
            raise ZooError("give either NAME/CKPT or --encoder CKPT, not both")
        model, config = encoder_classifier(options.encoder, num_classes)
        return model, f"encoder of {options.encoder}", str(options.encoder), _norm(config)
    if not source:
        raise ZooError("name a model or checkpoint to finetune, or pass --encoder CKPT; see 'zoo list'")
    local = _timm_folder(source)
    if local is not None:  # local-dir:PATH, or a folder timm (or the Hugging Face hub) saved
        from zoo.checkpoint import load_checkpoint, load_timm_folder

        model, config = load_timm_folder(local) if timm_folder_config(local) else load_checkpoint(local)
        model.train()
        return model, f"timm folder {local}", local, _norm(config)
    if is_checkpoint(source):
        from zoo.checkpoint import load_checkpoint

        if options.weights:
            raise ZooError("--weights is for registry names; a checkpoint brings its own weights")
        model, config = load_checkpoint(source)
        if int(config.get("num_classes", 0)) == 0 and hasattr(model, "decoder"):
            raise ZooError(f"{source} is an autoencoder checkpoint; finetune its encoder with --encoder {source}")
        model.train()
        return model, f"checkpoint {source}", str(source), _norm(config)
    from zoo.plugins import get_spec

    spec = get_spec(source)
    tag = options.pretrained if isinstance(options.pretrained, str) else None
    model = create_model(spec, num_classes=num_classes, pretrained=tag or bool(options.pretrained),
                         weights=options.weights, **dict(model_args or {}))
    built = model_info(model)
    info = built.pretrained or {}
    where = info.get("source", "none")
    if where not in ("file", "checkpoint", "none"):
        where = f"{spec.name}.{info.get('tag')} from {where} ({info.get('path')})"
    elif where != "none":
        where = f"{info.get('path')}"
    weights = next((w for w in spec.weights if w.tag == info.get("tag")), None)
    norm = {"mean": list(weights.mean) if weights and weights.mean else list(spec.mean),
            "std": list(weights.std) if weights and weights.std else list(spec.std),
            "input_size": [built.in_chans, *spec.input_size[1:]]}
    if info.get("source") == "checkpoint":
        from zoo.io import load_config

        norm = _norm(load_config(info["path"]))
    return model, spec.name, where, norm


def _norm(config: dict[str, Any]) -> dict[str, Any]:
    return {"mean": config.get("mean"), "std": config.get("std"), "input_size": config.get("input_size")}


def prepare(source: str | None, num_classes: int, options: FinetuneOptions, lr: float,
            model_args: dict[str, Any] | None = None) -> Prepared:
    """Build, re-head, freeze and group the model (no data needed beyond the class count)."""
    from zoo.transfer.freeze import freeze, param_groups
    from zoo.transfer.heads import HeadedModel, parse_head, replace_head

    head = parse_head(options.head, options.head_dropout)
    if not 0 < options.layer_decay <= 1:
        raise ZooError(f"--layer-decay must be in (0, 1], got {options.layer_decay}")
    if options.unfreeze_after is not None and options.unfreeze_after < 0:
        raise ZooError(f"--unfreeze-after must be 0 or more epochs, got {options.unfreeze_after}")
    if options.unfreeze_every < 1:
        raise ZooError(f"--unfreeze-every must be at least 1, got {options.unfreeze_every}")
    model, label, weights_from, norm = build_backbone(source, num_classes, options, model_args)
    info = model_info(model)
    if not (options.keep_head and info is not None and info.num_classes == num_classes):
        if head.kind == "mlp" and isinstance(model, HeadedModel):
            model = model.backbone  # a finetuned checkpoint's old MLP head gives way to the new one
        model = replace_head(model, num_classes, head)
    result = freeze(model, options.freeze, patterns=options.freeze_patterns, bn_policy=options.bn_policy)
    groups = param_groups(model, lr, options.layer_decay)
    size = norm.get("input_size")
    return Prepared(model, label, weights_from, norm.get("mean"), norm.get("std"),
                    tuple(int(v) for v in size) if size else None, result, groups, head)


def describe_plan(prepared: Prepared, *, cached: bool | None = None, reason: str = "") -> str:
    """Human-readable plan: source, weights, head, freezing, and the per-group table."""
    rows = []
    for g in prepared.groups:
        rows.append([g.name, f"{g.trainable:,}", f"{g.frozen:,}", f"{g.lr:.3g}"])
    total_t = sum(g.trainable for g in prepared.groups)
    total_f = sum(g.frozen for g in prepared.groups)
    rows.append(["total", f"{total_t:,}", f"{total_f:,}", ""])
    widths = [max(len(r[i]) for r in rows + [["GROUP", "TRAINABLE", "FROZEN", "LR"]]) for i in range(4)]
    header = ["GROUP", "TRAINABLE", "FROZEN", "LR"]

    def fmt(row: list[str]) -> str:
        return "  ".join([row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2]),
                          row[3].rjust(widths[3])]).rstrip()

    fr = prepared.freeze
    lines = [
        f"finetune:  {prepared.source}",
        f"weights:   {prepared.weights_from}",
        f"head:      {prepared.head.describe()}",
        f"frozen:    {', '.join(fr.frozen_stages) or 'nothing'}"
        + (f" (+{len(fr.frozen_params)} params by pattern)" if not fr.frozen_stages and fr.frozen_params else "")
        + f"; BatchNorm {fr.bn_policy}" + (f" ({len(fr.frozen_bn)} layers locked in eval)" if fr.frozen_bn else ""),
    ]
    if cached is not None:
        lines.append("features:  cached (computed once, the head trains on them)" if cached
                     else f"features:  not cached ({reason})")
    lines += [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    return "\n".join(lines)


# -- gradual unfreezing --------------------------------------------------------


def unfreeze_schedule(frozen_stages: Sequence[str], after: int, every: int) -> Callable[[int], list[str]]:
    """Epoch (1-based) -> the stages trainable by then: one more from the top every ``every`` epochs."""
    top_down = list(reversed(frozen_stages))

    def at(epoch: int) -> list[str]:
        if epoch <= after:
            return []
        k = min(len(top_down), 1 + (epoch - after - 1) // every)
        return top_down[:k]

    return at


def _unfreeze_callback(prepared: Prepared, options: FinetuneOptions, log: Callable[[str], None]):
    from zoo.train import Callback
    from zoo.transfer.freeze import refresh_counts, unfreeze

    schedule = unfreeze_schedule(prepared.freeze.frozen_stages, options.unfreeze_after or 0, options.unfreeze_every)
    done: set[str] = set()

    class GradualUnfreeze(Callback):
        def on_epoch_start(self, trainer: Any, epoch: int) -> None:
            newly = [s for s in schedule(epoch) if s not in done]
            if not newly:
                return
            unfreeze(trainer.model, newly)
            done.update(newly)
            refresh_counts(prepared.groups)
            lrs = {g["name"]: g["lr"] for g in trainer.optimizer.param_groups if "name" in g}
            log(f"epoch {epoch}: unfreezing {', '.join(f'{s} (lr {lrs.get(s, 0):.3g})' for s in newly)}")

    return GradualUnfreeze()


# -- feature caching -----------------------------------------------------------


# -- the run -------------------------------------------------------------------


@restores_process  # threads and global RNGs as they were (zoo.train.scope)
def finetune(
    source: str | None,
    data: Any,
    config: Any = None,
    options: FinetuneOptions | None = None,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    dry_run: bool = False,
    log: Callable[[str], None] | None = None,
    callbacks: Sequence[Any] = (),
    **train_options: Any,
):
    """Finetune ``source`` (registry name or checkpoint; None with ``options.encoder``) on ``data``.

    ``data`` is an image folder / ``scheme:name`` or a :class:`zoo.data.ImageData`;
    ``config`` a :class:`zoo.train.TrainConfig` (keywords override it); without
    one, the finetune defaults apply, as in ``zoo finetune``
    (:data:`zoo.transfer.defaults.FINETUNE_TRAIN_DEFAULTS`: AdamW, lr 3e-3, 20 epochs, the weights'
    mean/std; see :func:`finetune_config`). Returns
    the trainer's :class:`zoo.train.TrainResult` with ``plan`` (the dry-run
    text) and ``cached_features`` attached; with ``dry_run`` only the plan
    is built and returned as a string.
    """
    from dataclasses import replace

    from zoo.data.dataset import ImageData

    options = options or FinetuneOptions()
    cfg = replace(config, **train_options) if config is not None else finetune_config(**train_options)
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    if dry_run:
        classes = _class_names(data, cfg)
        prepared = prepare(source, len(classes), options, cfg.lr, cfg.model_args)
        cached, reason = _cache_decision(prepared, options, cfg)
        return describe_plan(prepared, cached=cached, reason=reason)
    claim_run_dir(cfg.out, resume=cfg.resume, overwrite=cfg.overwrite)  # before the data and the feature pass
    t0 = time.time()
    # A scan first (no decoding): whether features are cached decides whether images are kept at all.
    dataset = _load(data, source, options, cfg, cache=False)
    import torch

    torch.manual_seed(cfg.seed)  # the new head starts the same for the same seed
    prepared = prepare(source, dataset.num_classes, options, cfg.lr, cfg.model_args)
    wanted = tuple(cfg.input_size or prepared.input_size or dataset.input_size)
    if cfg.input_size:
        from zoo.models.probe import check_input_size

        check_input_size(prepared.model, wanted)
    cached, reason = _cache_decision(prepared, options, cfg)
    if cached:
        from zoo.transfer.features import head_matches_pre_logits

        if not head_matches_pre_logits(prepared.model, _normalised_sample(dataset, prepared, wanted)):
            cached, reason = False, "this model's forward is not classifier(pre-logits)"
    if not isinstance(data, ImageData) or tuple(dataset.input_size) != wanted:
        # Cached features stream the images past the backbone once and keep none of them.
        dataset = _load(data, source, options, cfg, input_size=wanted, cache=False if cached else None)
    plan = describe_plan(prepared, cached=cached, reason=reason)
    say(plan)
    if cfg.normalize == "model" and mean is None:
        mean, std = prepared.mean, prepared.std
    extra = {"finetune": {**options.to_dict(), "source": prepared.source, "weights_from": prepared.weights_from,
                          "cached_features": cached, "source_argument": source, "data": str(dataset.root)}}
    from zoo.train import Trainer

    callbacks = list(callbacks)
    if options.unfreeze_after is not None and prepared.freeze.frozen_stages:
        callbacks.append(_unfreeze_callback(prepared, options, say))
    groups = [g.as_optimizer_group() for g in prepared.groups]
    if cached:
        from zoo.data.transforms import compute_mean_std

        if mean is None or std is None:
            from zoo.train.prepare import sample_mean_std

            mean, std = compute_mean_std(dataset.train.images) if dataset.train.images is not None else (
                sample_mean_std(dataset.train, dataset.input_size))
        device = _device(cfg)
        model = prepared.model.to(device)
        (train_x, train_y), val, feature_seconds = _feature_pass(model, dataset, mean, std, device, cfg, options, say)
        trainer = Trainer(model, (train_x, train_y), val, cfg, class_names=dataset.class_names,
                          input_size=dataset.input_size, mean=mean, std=std, param_groups=groups,
                          callbacks=callbacks, extra_config=extra, forward_module=model.get_classifier())
        result = trainer.fit()
        result.feature_seconds = feature_seconds
    else:
        trainer = Trainer(prepared.model, dataset, None, cfg, mean=mean, std=std, param_groups=groups,
                          callbacks=callbacks, extra_config=extra)
        result = trainer.fit()
    result.skipped = dataset.skipped | result.skipped  # feature caching trains on tensors, which skip nothing
    result.plan = plan
    result.cached_features = cached
    result.train_images = len(dataset.train)
    result.seconds = time.time() - t0
    return result


def _feature_pass(model: Any, dataset: Any, mean: Any, std: Any, device: Any, cfg: Any, options: FinetuneOptions,
                  say: Callable[[str], None]):
    """``((train features, labels), (val features, labels) or None)``, computed once with the chosen engine."""
    from zoo.data.budget import budget_batch_size
    from zoo.data.dataset import refuse_unreadable
    from zoo.data.transforms import Normalize
    from zoo.transfer.engine import FeatureMeter, PreLogits, choose_engine
    from zoo.transfer.features import extract_split_features

    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    size = tuple(dataset.input_size)
    batch = budget_batch_size(model, size, cfg.memory_mb, forward=PreLogits(model))
    sample = Normalize(mean, std)(_real_batch(dataset.train, size, min(batch, 8), dataset.root))
    from zoo.devices import autocast_choice

    engine = choose_engine(model, sample, size, engine=options.feature_engine, device=device, threads=cfg.threads,
                           log=say, amp=autocast_choice(device, cfg.amp))
    splits = [dataset.train] + ([dataset.val] if dataset.val is not None else [])
    meter = FeatureMeter(sum(len(s) for s in splits), engine.name, say)
    out = []
    with engine:
        for split in splits:
            seen = [0]

            def progress(done: int, _total: int, seen: list[int] = seen) -> None:
                meter.advance(done - seen[0])
                seen[0] = done

            out.append(extract_split_features(model, split, size, mean=mean, std=std, batch_size=batch,
                                              device=device, progress=progress, engine=engine,
                                              skipped=dataset.skipped))
    say(meter.close() + f", batches of {batch}")
    refuse_unreadable(len(dataset.train), out[0][1], dataset.skipped, dataset.root, multi_label=dataset.multi_label)
    del engine
    import gc

    gc.collect()  # the engine's session and buffers go before training starts
    return out[0], (out[1] if len(out) > 1 else None), meter.seconds


def _real_batch(split: Any, size: Sequence[int], count: int, root: Any = None):
    """The first ``count`` decodable images of a split (uint8), cached or not: the engine is checked on them.

    A split none of whose files decode is refused here, before the engine is
    chosen, with what was skipped and why (the training path's message).
    """
    if split.images is not None:
        return split.batch(0, count)
    import torch

    from zoo.data.dataset import refuse_unreadable
    from zoo.data.decode import decode_many
    from zoo.runtime.skips import SkipReport

    found, skipped, step = [], SkipReport(), 4 * count
    for start in range(0, len(split.paths), step):
        images, _, bad = decode_many(split.paths[start:start + step], int(size[0]), tuple(size[1:]))
        skipped.update(bad)
        if len(images):
            found.append(images)
        if sum(len(f) for f in found) >= count:
            break
    if not found:
        refuse_unreadable(len(split.paths), [], skipped, root)
    return torch.cat(found)[:count]


def _device(cfg: Any):
    from zoo.devices import select_device

    return select_device(cfg.device)


def _cache_decision(prepared: Prepared, options: FinetuneOptions, cfg: Any) -> tuple[bool, str]:
    from zoo.data.transforms import parse_augment
    from zoo.transfer.features import can_cache_features

    if options.cache_features is False:
        return False, "--no-cache-features"
    if options.unfreeze_after is not None and prepared.freeze.frozen_stages:
        return False, "stages unfreeze during training"
    if cfg.resume:
        return False, "resuming"
    if getattr(cfg, "mixup", 0) or getattr(cfg, "cutmix", 0):
        if options.cache_features:
            raise ZooError("--mixup/--cutmix mix images, so they need --no-cache-features")
        return False, "--mixup/--cutmix mix images"
    ok, reason = can_cache_features(prepared.model, parse_augment(cfg.augment), options.bn_policy)
    if options.cache_features and not ok:
        raise ZooError(f"--cache-features needs a frozen backbone and no augmentation: {reason}")
    return ok, reason


def _class_names(data: Any, cfg: Any) -> list[str]:
    from zoo.data.dataset import ImageData

    if isinstance(data, ImageData):
        return list(data.class_names)
    from zoo.data.folder import find_layout

    from zoo.data.table import table_columns

    return list(find_layout(data, val_split=cfg.val_split, seed=cfg.seed, columns=table_columns(cfg)).class_names)


def _load(data: Any, source: str | None, options: FinetuneOptions, cfg: Any, input_size=None, cache=None):
    """The data as an ImageData; ``cache=False`` scans without decoding (None: the run's own ``--cache``)."""
    from zoo.data.dataset import ImageData, load_image_data

    if isinstance(data, ImageData) and input_size is None:
        return data
    if isinstance(data, ImageData):
        if tuple(data.input_size) == tuple(input_size):
            return data
        data = data.root
    size = input_size or cfg.input_size or _source_input_size(source, options)
    from zoo.data.table import table_columns

    return load_image_data(data, size, val_split=cfg.val_split, seed=cfg.seed,
                           cache=cfg.cache if cache is None else cache, cache_budget_mb=cfg.cache_mb,
                           verbose=cfg.progress, columns=table_columns(cfg))


def _source_input_size(source: str | None, options: FinetuneOptions) -> tuple[int, int, int]:
    from zoo.io import load_config
    from zoo.plugins import get_spec

    if options.encoder:
        return tuple(load_config(options.encoder)["input_size"])
    local = _timm_folder(source) if source else None
    raw = timm_folder_config(local) if local is not None else None
    if raw is not None:
        return tuple((raw.get("pretrained_cfg") or raw).get("input_size") or (3, 224, 224))
    if source and (local or is_checkpoint(source)):
        return tuple(load_config(local or source)["input_size"])
    if not source:
        raise ZooError("name a model or checkpoint to finetune, or pass --encoder CKPT")
    return get_spec(source).input_size


def _normalised_sample(dataset: Any, prepared: Prepared, size: Sequence[int]):
    """Four decodable training images at ``size`` (C, H, W), normalised (none decoding is a DataError)."""
    from zoo.data.transforms import Normalize

    return Normalize(prepared.mean, prepared.std)(_real_batch(dataset.train, size, 4, dataset.root))
