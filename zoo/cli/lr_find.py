"""``zoo lr-find``: the learning-rate range test, a thin layer over :func:`zoo.train.lr_find.find_lr`."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import click

from zoo.cli._options import parse_key_values
from zoo.cli.train import _input_size, train_command
from zoo.runtime.cli import floats

# zoo train's options that shape a training step, taken over as they are (same names, defaults and checks).
_SHARED = ("data", "batch_size", "optimizer", "momentum", "weight_decay", "l2", "l1", "loss", "label_smoothing",
           "clip_grad", "device", "amp", "channels_last", "seed", "augment", "normalize", "mean", "std", "input_size",
           "val_split", "cache", "cache_mb", "workers", "memory_mb", "threads", "quiet", "model_args", "as_json")


@click.command("lr-find")
@click.argument("source", metavar="SOURCE")
@click.option("--start-lr", type=click.FloatRange(min=0, min_open=True), default=1e-7, show_default=True,
              help="Learning rate of the first step.")
@click.option("--end-lr", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Learning rate of the last step (the test stops earlier when the loss diverges).")
@click.option("--steps", type=click.IntRange(min=5), default=100, show_default=True, help="Steps of the ramp at most.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default="lr_find.png", show_default=True,
              help="Where to write the plot of loss against learning rate.")
def lr_find_command(source: str, start_lr: float, end_lr: float, steps: int, plot_path: str, as_json: bool,
                    quiet: bool, mean: str | None, std: str | None, input_size: str | None, cache: bool | None,
                    model_args: tuple[str, ...], data: str, **options) -> None:
    """Find a learning rate for SOURCE (a model name, or a checkpoint directory of the data's classes) on --data.

    The range test of Smith (2015): the learning rate grows exponentially
    from --start-lr to --end-lr, one training batch a step, until the
    smoothed loss diverges; it prints a suggestion (the lr of the lowest
    smoothed loss / 10) and writes a plot. The model and optimizer are put
    back afterwards; 'zoo train/finetune --lr auto' runs the same test first.

    \b
    Examples:
      zoo lr-find net --data demo:cats
      zoo lr-find resnet18 --data pics/ --optimizer adamw --plot runs/lr.png
    """
    from zoo.train import TrainConfig, load_folder_for
    from zoo.train.lr_find import find_lr
    from zoo.train.trainer import Trainer

    mean_v, std_v = floats(mean, "--mean"), floats(std, "--std")
    if (mean_v is None) != (std_v is None):
        raise click.UsageError("give --mean and --std together")
    if start_lr >= end_lr:
        raise click.UsageError(f"--start-lr {start_lr:g} must be below --end-lr {end_lr:g}")
    cfg = TrainConfig(**options, epochs=1, input_size=_input_size(input_size),
                      cache="auto" if cache is None else cache, plot=False, progress=not quiet,
                      model_args=parse_key_values(model_args))
    model = source
    if Path(source).is_dir():
        from zoo.checkpoint import load_checkpoint

        model, _ = load_checkpoint(source)
    trainer = Trainer(model, load_folder_for(model, data, cfg), None, cfg, mean=mean_v, std=std_v)
    trainer.setup()
    try:
        found = find_lr(trainer, start=start_lr, end=end_lr, steps=steps)
    finally:
        trainer.close()
    written = found.plot(plot_path)
    if as_json:
        click.echo(json.dumps({**found.to_dict(), "plot": str(written)}, indent=2))
        return
    if not quiet:
        click.echo(found.summary(), err=True)
    click.echo(f"suggested lr {found.suggestion:.3g}  (plot: {written}); train with --lr {found.suggestion:.3g}")


def _shared_options() -> list[click.Parameter]:
    by_name = {p.name: p for p in train_command.params}
    return [copy.copy(by_name[name]) for name in _SHARED]


lr_find_command.params.extend(_shared_options())
