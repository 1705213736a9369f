"""``zoo compare``: a linear head on each backbone's cached features; accuracy, speed and size side by side."""

from __future__ import annotations

import json
from pathlib import Path

import click

from zoo.cli._options import json_option


@click.command("compare")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--data", required=True, help="Image folder (class sub-folders) or SCHEME:NAME such as demo:cats.")
@click.option("--input-size", help="C,H,W for every model (e.g. 3x160x160) [each model's own].")
@click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True, help="Epochs of each linear head.")
@click.option("--lr", type=float, default=3e-3, show_default=True, help="Learning rate of each head (AdamW).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--val-split", type=float, default=0.1, show_default=True,
              help="Validation fraction when DATA has no train/ and val/.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for the feature pass and ONNX Runtime.")
@click.option("--runs", "latency_runs", type=click.IntRange(min=1), default=20, show_default=True,
              help="Timed ONNX Runtime calls at batch 1 (the median is shown).")
@click.option("--out", type=click.Path(file_okay=False), default="runs/compare", show_default=True,
              help="Where each model's checkpoint (OUT/NAME/best) and the plot go.")
@click.option("--plot", type=click.Path(dir_okay=False), help="PNG of accuracy against latency [OUT/compare.png].")
@json_option("Print JSON (one entry per model) instead of a table.")
def compare_command(names: tuple[str, ...], data: str, input_size: str | None, epochs: int, lr: float,
                    batch_size: int, val_split: float, threads: int | None, latency_runs: int, out: str,
                    plot: str | None, as_json: bool) -> None:
    """Which backbone suits DATA: for each NAME (names or patterns such as 'efficientnet_lite*') whose
    pretrained weights are on this machine, train a linear head on cached features and show validation
    accuracy, feature-pass time, ONNX Runtime latency at batch 1 and parameters.

    \b
    Examples:
      zoo compare --data demo:cats efficientnet_lite0 cifar8_resnet
      zoo compare --data pics/ 'efficientnet_lite*' --input-size 3x160x160 --json
    """
    from zoo.cli.train import _input_size
    from zoo.transfer.compare import compare, format_table
    from zoo.transfer.compare import plot as draw

    size = _input_size(input_size)
    rows = compare(list(names), data, out=out, input_size=size, epochs=epochs, lr=lr, batch_size=batch_size,
                   threads=threads, latency_runs=latency_runs, val_split=val_split,
                   log=lambda line: click.echo(line, err=True))
    picture = draw(rows, Path(plot) if plot else Path(out) / "compare.png")
    if as_json:
        click.echo(json.dumps({"models": [r.to_dict() for r in rows], "plot": str(picture)}, indent=2))
        return
    click.echo(format_table(rows))
    click.echo(f"plot: {picture}")
