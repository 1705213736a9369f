"""``zoo train`` and ``zoo evaluate``: thin layers over :mod:`zoo.train`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from zoo.cli._options import (
    DATA_HELP,
    config_option,
    amp_option,
    device_option,
    json_option,
    model_argument,
    parse_key_values,
    quiet_option,
    table_options,
)
from zoo.runtime.cli import floats

RESUME_LAST = "<OUT/last>"


def _ints(text: str | None, option: str) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}", param_hint=option) from None


class LearningRate(click.ParamType):
    """A positive number, or ``auto`` (the LR range test picks it)."""

    name = "LR|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, float) or value == "auto":
            return value
        if str(value).strip().lower() == "auto":
            return "auto"
        try:
            lr = float(value)
        except ValueError:
            self.fail(f"expected a number or 'auto', got {value!r}", param, ctx)
        if not lr > 0:
            self.fail(f"must be positive, got {value!r}", param, ctx)
        return lr


def _input_size(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise click.BadParameter(f"expected CxHxW such as 3x32x32, got {text!r}", param_hint="--input-size")
    return values  # type: ignore[return-value]


@click.command("train")
@model_argument("name")
@config_option()
@click.option("--data", required=True, help=DATA_HELP)
@table_options()
@click.option("--out", type=click.Path(file_okay=False), help="Output directory for best/, last/, metrics and curves [runs/NAME].")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=LearningRate(), default=1e-2, show_default=True,
              help="Learning rate (the peak for onecycle), or 'auto': run the LR range test first (see 'zoo lr-find').")
@click.option("--optimizer", type=click.Choice(["sgd", "adam", "adamw"]), default="sgd", show_default=True)
@click.option("--momentum", type=float, default=0.9, show_default=True, help="SGD momentum (0: the book's plain SGD).")
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--l2", type=float, default=0.0, show_default=True, help="Explicit penalty: loss + L2 * sum(p^2).")
@click.option("--l1", type=float, default=0.0, show_default=True, help="Explicit penalty: loss + L1 * sum(|p|).")
@click.option("--loss", type=click.Choice(["ce", "nll", "mse"]), default="ce", show_default=True,
              help="Cross-entropy, NLL on log-softmax, or MSE of softmax against one-hot.")
@click.option("--label-smoothing", type=float, default=0.0, show_default=True)
@click.option("--scheduler", type=click.Choice(["none", "step", "multistep", "cosine", "onecycle"]), default="none", show_default=True)
@click.option("--step-size", type=int, default=10, show_default=True, help="Epochs between decays (step).")
@click.option("--milestones", help="Epochs at which to decay (multistep), e.g. 30,60.")
@click.option("--gamma", type=float, default=0.1, show_default=True, help="Decay factor (step, multistep).")
@click.option("--clip-grad", type=float, help="Clip the gradient norm to this value.")
@click.option("--early-stop", type=int, metavar="PATIENCE", help="Stop after this many epochs without improvement.")
@click.option("--monitor", type=click.Choice(["val_acc", "val_loss", "train_acc", "train_loss"]), default="val_acc",
              show_default=True, help="Metric for the best checkpoint and early stopping.")
@device_option()
@amp_option()
@click.option("--channels-last/--no-channels-last", default=None, help="Channels-last memory format [on for CUDA and CPU].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--augment", default="none", show_default=True,
              help="Training augmentations: crop[=PAD],flip[=P],rotate[=DEG],jitter[=S],blur[=SIGMA],trivial[=BINS],"
                   "randaugment[=MAGNITUDE], 'default' (crop,flip) or 'none'.")
@click.option("--normalize", type=click.Choice(["dataset", "model"]), default="dataset", show_default=True,
              help="Mean/std of the training images, or the architecture's own.")
@click.option("--mean", help="Explicit normalisation mean, e.g. 0.485,0.456,0.406 (with --std).")
@click.option("--std", help="Explicit normalisation std (with --mean).")
@click.option("--input-size", help="Input size CxHxW [the architecture's].")
@click.option("--val-split", type=float, default=0.1, show_default=True,
              help="Held-out fraction when DATA has no train/ and val/ or validation column (0: none).")
@click.option("--cache/--no-cache", default=None, help="Decode all images into memory [when they fit --cache-mb].")
@click.option("--cache-mb", type=float, default=1024, show_default=True, help="Memory budget of the image cache.")
@click.option("--workers", type=int, help="DataLoader workers when streaming [one per core, at most 8].")
@click.option("--memory-mb", type=float, default=512, show_default=True,
              help="Memory budget of one inference batch's activations (validation, feature pass).")
@click.option("--threads", type=int, help="CPU threads for torch [torch's default].")
@click.option("--metrics-format", type=click.Choice(["jsonl", "csv", "both", "none"]), default="jsonl", show_default=True)
@click.option("--no-plot", is_flag=True, help="Do not write curves.png.")
@click.option("--logger", "loggers", multiple=True, type=click.Choice(["tensorboard", "mlflow"]),
              help="Also log to an experiment tracker (repeatable): OUT/tensorboard, or MLflow.")
@click.option("--tracking-uri", help="MLflow tracking URI (a server, or a store path) [./mlruns].")
@quiet_option()
@click.option("--resume", is_flag=False, flag_value=RESUME_LAST, default=None, metavar="[CKPT]",
              help="Continue from a checkpoint directory [OUT/last when given without a value].")
@click.option("--overwrite", is_flag=True,
              help="Move an earlier run in --out aside (to OUT.old-TIME) instead of refusing to start.")
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE", help="Architecture argument (repeatable).")
@click.option("--accumulate", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="Sum the gradients of N batches before each optimizer step (an N times larger batch).")
@click.option("--ema", type=float, metavar="DECAY",
              help="Keep a moving average of the weights (e.g. 0.999); best/ holds it when it validates better.")
@click.option("--mixup", type=click.FloatRange(min=0), default=0.0, show_default=True, metavar="ALPHA",
              help="MixUp with Beta(ALPHA, ALPHA) (e.g. 0.2; 0: off); soft-target loss.")
@click.option("--cutmix", type=click.FloatRange(min=0), default=0.0, show_default=True, metavar="ALPHA",
              help="CutMix with Beta(ALPHA, ALPHA) (e.g. 1.0; 0: off); with --mixup, one of the two per batch.")
@click.option("--nproc", type=int, default=None, metavar="N",
              help="Launch N data-parallel processes on this machine with torchrun.")
@json_option("Print the result as JSON on stdout.")
def train_command(name: str, data: str, out: str | None, nproc: int | None, as_json: bool, quiet: bool,
                  no_plot: bool, cache: bool | None, mean: str | None, std: str | None, input_size: str | None,
                  milestones: str | None, model_args: tuple[str, ...], resume: str | None, **options) -> None:
    """Train model NAME on an image folder and write checkpoints to --out.

    \b
    Examples:
      zoo train net --data demo:cats --epochs 20 --out runs/net
      zoo train net --data pics/ --val-split 0.2 --augment default --scheduler cosine
      zoo train net --data pics/ --out runs/net --resume          (continue runs/net/last)
      zoo train net --config recipe.toml --lr 0.05                (the recipe, with another lr)
      zoo train --config runs/net/best/config.json --out runs/again  (rerun a recorded run)
    """
    from zoo.io import claim_run_dir

    mean_v, std_v = floats(mean, "--mean"), floats(std, "--std")
    if (mean_v is None) != (std_v is None):
        raise click.UsageError("give --mean and --std together")
    out_dir = Path(out) if out else Path("runs") / name.replace("/", "_")
    if resume == RESUME_LAST:
        resume = str(out_dir / "last")
    claim_run_dir(out_dir, resume=resume, overwrite=options["overwrite"])  # before any data is read
    if nproc is not None and nproc > 1:
        from zoo.train.distributed import launch_nproc, relaunch_args

        # The workers find the earlier run moved aside already; they must not refuse the empty folder.
        argv = [a for a in sys.argv[1:] if a != "--overwrite"]
        sys.exit(launch_nproc(nproc, relaunch_args(argv, "train")))
    from zoo.train import load_folder_for
    from zoo.train.trainer import Trainer

    cfg = make_train_config(options, out_dir=out_dir, resume=resume, milestones=milestones, input_size=input_size,
                            cache=cache, no_plot=no_plot, quiet=quiet, model_args=model_args)
    dataset = load_folder_for(name, data, cfg)
    from zoo.train.distributed import from_env

    dist = from_env()
    trainer = Trainer(name, dataset, None, cfg, mean=mean_v, std=std_v, dist=dist)
    result = trainer.fit()
    if not dist.is_main:
        return
    echo_result(result, as_json)


def echo_result(result, as_json: bool, *, seconds: float | None = None, **extra) -> None:
    """Print a training result (JSON, or the best and last checkpoints); exit 130 if interrupted.

    Files the data layer skipped (scanning, decoding, or streaming) are one
    line on stderr, and the ``skipped`` key of the JSON.
    """
    from zoo.runtime.skips import as_report

    skipped = as_report(getattr(result, "skipped", None))
    if skipped:
        click.echo(f"zoo: {skipped.describe()}", err=True)
    summary = {
        "stopped": result.stopped,
        "best_epoch": result.best_epoch,
        "best": result.best_metrics,
        "last": result.final,
        "skipped": skipped.to_dict(),
        **extra,
        "out": str(result.out),
        "best_path": str(result.best_path) if result.best_path else None,
        "last_path": str(result.last_path) if result.last_path else None,
    }
    if seconds is not None:
        summary["seconds"] = round(seconds, 1)
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
    else:
        best = result.best_metrics
        metric = "val_acc" if "val_acc" in best else "train_acc"
        took = f" ({seconds:.0f}s)" if seconds is not None else ""
        if best:
            click.echo(f"best {metric} {100 * best[metric]:.2f}% at epoch {result.best_epoch}{took}: {result.best_path}")
        click.echo(f"last checkpoint: {result.last_path}")
    if result.stopped == "interrupted":
        click.echo(f"interrupted: saved {result.last_path}; continue with --resume", err=True)
        sys.exit(130)


def make_train_config(options: dict, *, out_dir: Path, resume: str | None, milestones: str | None,
                      input_size: str | None, cache: bool | None, no_plot: bool, quiet: bool,
                      model_args: tuple[str, ...], auto_lr_base: float = 1e-2):
    """The TrainConfig of the shared training options (used by train and finetune); ``--lr auto`` sets lr_find."""
    from zoo.train import TrainConfig

    options = dict(options)
    if options.get("lr") == "auto":
        # The range test scales every group from this lr, keeping their ratios.
        options["lr"], options["lr_find"] = auto_lr_base, True
    return TrainConfig(
        **options,
        milestones=_ints(milestones, "--milestones"),
        input_size=_input_size(input_size),
        cache="auto" if cache is None else cache,
        plot=not no_plot,
        progress=not quiet,
        out=str(out_dir),
        resume=resume,
        model_args=parse_key_values(model_args),
    )
