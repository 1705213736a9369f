"""``zoo finetune`` and ``zoo pretrain autoencoder``: thin layers over :mod:`zoo.transfer`.

``finetune`` takes every option of ``zoo train`` (the same parameter objects,
with transfer-friendly defaults) plus the transfer options.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import click

from zoo.cli._options import (
    amp_option,
    complete_model_name,
    config_option,
    deprecated,
    device_option,
    json_option,
    parse_key_values,
    quiet_option,
    recipe_option,
)
from zoo.cli.train import (
    RESUME_LAST,
    echo_result,
    make_train_config,
    train_command,
)
from zoo.runtime.cli import floats

from zoo.transfer.defaults import FINETUNE_TRAIN_DEFAULTS, FinetuneOptions

# zoo train's options that finetune does not take; the defaults that suit a pretrained
# backbone come from zoo.transfer.defaults, which zoo.finetune(...) uses too.
_NOT_SHARED = {"name", "nproc"}
_DEFAULT = FinetuneOptions()


def _shared_train_options() -> list[click.Parameter]:
    params = []
    for param in train_command.params:
        if param.name in _NOT_SHARED:
            continue
        param = copy.copy(param)
        if param.name in FINETUNE_TRAIN_DEFAULTS:
            param.default = FINETUNE_TRAIN_DEFAULTS[param.name]
        if param.name == "out":
            param.help = "Output directory for best/, last/, metrics and curves [runs/finetune_NAME]."
        if param.name == "normalize":
            param.help = "Mean/std of the pretrained weights (model) or of the training images (dataset)."
        params.append(param)
    return params


@click.command("finetune")
@click.argument("source", required=False, metavar="[SOURCE]")
@recipe_option()
@click.option("--weights", type=click.Path(), help="Weight file (.safetensors, .pth, .pt) or zoo checkpoint to load into NAME.")
@click.option("--tag", help="Which registered pretrained weights of NAME [the first]; see 'zoo info NAME'.")
@click.option("--encoder", type=click.Path(), help="Autoencoder checkpoint (zoo pretrain autoencoder): its encoder is the backbone.")
@click.option("--head", default=_DEFAULT.head, show_default=True, help="New head: linear, or mlp:SIZE[,SIZE] (e.g. mlp:512).")
@click.option("--head-dropout", type=float, default=_DEFAULT.head_dropout, show_default=True, help="Dropout inside an MLP head.")
@click.option("--freeze", default=str(_DEFAULT.freeze), show_default=True,
              help="What to freeze: backbone, none, a stage name (it and all below it), or a number of stages.")
@click.option("--freeze-pattern", "freeze_patterns", multiple=True, metavar="GLOB",
              help="Also freeze parameters whose names match (repeatable), e.g. 'layer1.*'.")
@click.option("--bn", "bn_policy", type=click.Choice(["frozen", "train"]), default=_DEFAULT.bn_policy, show_default=True,
              help="BatchNorm in frozen parts: frozen (eval mode, statistics fixed) or train.")
@click.option("--unfreeze-after", type=int, metavar="N",
              help="After N epochs, unfreeze frozen stages one at a time from the top.")
@click.option("--unfreeze-every", type=int, default=_DEFAULT.unfreeze_every, show_default=True, metavar="K",
              help="Epochs between unfreezing one more stage.")
@click.option("--layer-decay", type=float, default=_DEFAULT.layer_decay, show_default=True,
              help="Discriminative learning rates: a stage k below the head trains at lr * decay^k.")
@click.option("--cache-features/--no-cache-features", default=_DEFAULT.cache_features,
              help="Train the head on backbone features computed once [when the backbone is frozen and augmentation off].")
@click.option("--feature-engine", type=click.Choice(["auto", "onnxruntime", "torch"]), default=_DEFAULT.feature_engine, show_default=True,
              help="What computes cached features: ONNX Runtime when it matches PyTorch (auto), or either one.")
@click.option("--dry-run", is_flag=True, help="Print the trainable/frozen parameters per group with their learning rates, then stop.")
@click.option("--budget", type=float, metavar="MINUTES", help="Wall-time budget of --recipe auto [10] or lp-ft [none].")
def finetune_command(source: str | None, weights: str | None, tag: str | None, encoder: str | None, head: str,
                     head_dropout: float, freeze: str, freeze_patterns: tuple[str, ...], bn_policy: str,
                     unfreeze_after: int | None, unfreeze_every: int, layer_decay: float, cache_features: bool | None,
                     feature_engine: str, dry_run: bool, recipe: str, budget: float | None, out: str | None, as_json: bool, quiet: bool, no_plot: bool, cache: bool | None,
                     mean: str | None, std: str | None, input_size: str | None, milestones: str | None,
                     model_args: tuple[str, ...], resume: str | None, **options) -> None:
    """Transfer learning: finetune SOURCE, a model name (pretrained weights, found offline first) or a checkpoint,
    or an autoencoder's encoder (--encoder) on an image folder.

    The head is replaced for the data's classes and the backbone frozen (by
    default); options of 'zoo train' apply.

    \b
    Examples:
      zoo finetune cifar8_resnet --data demo:cats
      zoo finetune resnet34 --data cats/ --head mlp:512 --unfreeze-after 3
      zoo finetune runs/net/best --data pics/ --freeze layer2 --dry-run
      zoo finetune --encoder runs/ae/best --data labelled/
      zoo finetune resnet34 --data cats/ --recipe gradual-unfreeze --epochs 6
    """
    from zoo.transfer.finetune import finetune

    data = options.pop("data")
    mean_v, std_v = floats(mean, "--mean"), floats(std, "--std")
    if (mean_v is None) != (std_v is None):
        raise click.UsageError("give --mean and --std together")
    label = (source or (Path(encoder).name if encoder else "model")).rstrip("/").replace("/", "_")
    out_dir = Path(out) if out else Path("runs") / f"finetune_{Path(label).name}"
    if resume == RESUME_LAST:
        resume = str(out_dir / "last")
    cfg = make_train_config(options, out_dir=out_dir, resume=resume, milestones=milestones, input_size=input_size,
                            cache=cache, no_plot=no_plot, quiet=quiet, model_args=model_args,
                            auto_lr_base=FINETUNE_TRAIN_DEFAULTS["lr"])
    freeze_value: str | int = int(freeze) if freeze.strip().isdigit() else freeze
    fopts = FinetuneOptions(
        head=head, head_dropout=head_dropout, freeze=freeze_value, freeze_patterns=tuple(freeze_patterns),
        bn_policy=bn_policy, unfreeze_after=unfreeze_after, unfreeze_every=unfreeze_every, layer_decay=layer_decay,
        pretrained=tag or True, weights=weights, encoder=encoder, cache_features=cache_features,
        feature_engine=feature_engine,
    )
    log = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    if dry_run:
        click.echo(finetune(source, data, cfg, fopts, mean=mean_v, std=std_v, dry_run=True))
        return
    from zoo.data.budget import keep_batches_off_the_heap, let_batches_on_the_heap

    # Process-wide and impossible to read back, so set here, where the process is the command's own,
    # and not by the library call (docs/training.md, "What a library call leaves behind"). A feature pass
    # needs it (memory stays flat); training a whole network is slowed by it, so such runs, and the
    # recipes' second stage, leave batches on the heap.
    whole_network = freeze_value == "none" or cache_features is False
    if not whole_network:
        keep_batches_off_the_heap()
    if recipe != "frozen" or budget is not None:
        from zoo.transfer.recipes import finetune_with_recipe

        if mean_v is not None:
            raise click.UsageError("--mean/--std apply to --recipe frozen; the recipes use the weights' own")
        # --lr and --epochs, when given, are the second stage's; the probe keeps finetune's defaults
        ctx = click.get_current_context()
        given = {k for k in ("lr", "epochs") if ctx.get_parameter_source(k) != click.core.ParameterSource.DEFAULT}
        probe = replace(cfg, **{k: FINETUNE_TRAIN_DEFAULTS[k] for k in given})
        extra = {"ft_epochs": cfg.epochs} if "epochs" in given else {}
        result = finetune_with_recipe(source, data, probe, fopts, recipe=recipe, budget=budget,
                                      ft_lr=cfg.lr if "lr" in given else None, log=log,
                                      before_stage_two=let_batches_on_the_heap, **extra)
        echo_result(result, as_json, seconds=result.seconds, cached_features=result.cached_features,
                    **({"recipe": result.recipe.to_dict()} if hasattr(result, "recipe") else {}))
        return
    result = finetune(source, data, cfg, fopts, mean=mean_v, std=std_v, log=log)
    echo_result(result, as_json, seconds=result.seconds, cached_features=result.cached_features)


finetune_command.params.extend(_shared_train_options())


@click.group("pretrain")
def pretrain_group() -> None:
    """Pretrain a backbone without labels (then 'zoo finetune --encoder CKPT')."""


@pretrain_group.command("autoencoder")
@click.argument("name", required=False, metavar="[NAME]", shell_complete=complete_model_name)
@config_option()
@click.option("--data", required=True, help="Folder of images (sub-folders are read too; labels are ignored), or SCHEME:NAME.")
@click.option("--arch", hidden=True, callback=deprecated("--arch NAME", "the positional NAME"))
@click.option("--out", type=click.Path(file_okay=False), help="Output directory for best/ and last/ [runs/pretrain_NAME].")
@click.option("--loss", type=click.Choice(["l2", "l1"]), default="l2", show_default=True, help="Reconstruction loss.")
@click.option("--noise", type=float, default=0.0, show_default=True,
              help="Denoising: Gaussian noise of this std (normalised units) on the input; the target stays clean.")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Peak learning rate (Adam, one-cycle).")
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--limit", type=int, help="Use at most this many images (a seeded random subset).")
@click.option("--val-split", type=float, default=0.05, show_default=True, help="Held-out fraction to watch the loss.")
@click.option("--val-fraction", type=float, hidden=True, callback=deprecated("--val-fraction", "--val-split"))
@click.option("--seed", type=int, default=0, show_default=True)
@device_option()
@amp_option()
@click.option("--resume", type=click.Path(), metavar="CKPT", help="Continue from a checkpoint directory (OUT/last).")
@click.option("--overwrite", is_flag=True, help="Move an earlier run in --out aside (to OUT.old-TIME) instead of refusing to start.")
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE", help="Architecture argument (repeatable).")
@json_option()
@quiet_option()
def pretrain_autoencoder_command(name: str | None, data: str, arch: str | None, out: str | None, loss: str, noise: float,
                                 epochs: int, batch_size: int, lr: float, weight_decay: float, limit: int | None,
                                 val_split: float, val_fraction: float | None, seed: int, device: str, amp: bool | None,
                                 resume: str | None, overwrite: bool, model_args: tuple[str, ...], as_json: bool,
                                 quiet: bool) -> None:
    """Train autoencoder NAME [ae_conv_32] to reconstruct the images of --data; its encoder then backs
    'zoo finetune --encoder OUT/best'.

    It runs on the training loop of 'zoo train': devices, mixed precision,
    checkpoints and --resume work the same.

    \b
    Examples:
      zoo pretrain autoencoder ae_conv_32 --data unlabelled/ --epochs 20
      zoo finetune --encoder runs/pretrain_ae_conv_32/best --data labelled/
    """
    from zoo.transfer.encoder import pretrain_autoencoder

    name = name or arch or "ae_conv_32"
    out_dir = Path(out) if out else Path("runs") / f"pretrain_{name}"
    log = None if quiet else (lambda line: click.echo(line, err=True))
    result = pretrain_autoencoder(name, data, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                                  loss=loss, noise=noise, val_fraction=val_split if val_fraction is None else val_fraction,
                                  limit=limit, seed=seed, out=out_dir, model_kwargs=parse_key_values(model_args),
                                  log=log, device=device, amp=amp, resume=resume, overwrite=overwrite)
    shown = result.val_loss if result.val_loss is not None else result.train_loss
    if as_json:
        click.echo(json.dumps({"loss": loss, "best_loss": shown, "images": result.images,
                               "seconds": round(result.seconds, 1), "best_path": str(result.path)}, indent=2))
        return
    click.echo(f"reconstruction {loss} {shown:.4f} on {result.images} images ({result.seconds:.0f}s): {result.path}")
    click.echo(f"next: zoo finetune --encoder {result.path} --data LABELLED_DIR")
