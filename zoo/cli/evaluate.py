"""``zoo evaluate`` and ``zoo mistakes``: scoring a checkpoint on an image folder."""

from __future__ import annotations

import json
from pathlib import Path

import click

from zoo.cli._options import DATA_HELP, amp_option, deprecated, device_option, json_option, memory_option, table_options

SPLIT = click.option("--split", type=click.Choice(["auto", "train", "val", "all"]), default="auto", show_default=True,
                     help="Which part of DATA: auto is val/ when present, else the whole folder.")
DATA = click.option("--data", required=True, help=DATA_HELP)
TABLE = table_options(multi_label=False)


def _columns(path_col: str | None, label_col: str | None, valid_col: str | None, label_delim: str):
    from zoo.data.table import TableColumns

    return TableColumns(path=path_col, label=label_col, valid=valid_col, label_delim=label_delim)


@click.command("evaluate")
@click.argument("source", metavar="SOURCE", type=click.Path())
@DATA
@TABLE
@SPLIT
@click.option("--batch-size", type=int, help="Images per batch [as many as fit --memory-mb, at most 256].")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Multi-label models: the probability that says yes, for F1 [the checkpoint's, else 0.5].")
@memory_option()
@device_option()
@amp_option()
@json_option("Print JSON instead of a report.")
@click.option("--confident", type=float, hidden=True, callback=deprecated("zoo evaluate --confident P", "zoo mistakes SOURCE --min-prob P"))
@click.option("--sheet", type=click.Path(dir_okay=False), hidden=True)
@click.option("--tta", help="Test-time augmentation: flip, crops (five crops) or flip,crops; probabilities averaged.")
@click.pass_context
def evaluate_command(ctx: click.Context, source: str, data: str, split: str, batch_size: int | None,
                     memory_mb: float, device: str, amp: bool | None, as_json: bool, confident: float | None, sheet: str | None,
                     path_col: str | None, label_col: str | None, valid_col: str | None, label_delim: str,
                     threshold: float | None, tta: str | None) -> None:
    """Accuracy, per-class accuracy and the confusion matrix of SOURCE (a checkpoint) on an image folder;
    for a multi-label model mAP, per-class average precision and F1 at --threshold.

    \b
    Examples:
      zoo evaluate runs/net/best --data pics/
      zoo evaluate runs/net/best --data demo:cats --split val --json
    """
    if confident is not None:
        ctx.invoke(mistakes_command, source=source, data=data, split=split, min_prob=confident, sheet=sheet,
                   batch_size=batch_size or 256, as_json=as_json, path_col=path_col, label_col=label_col,
                   valid_col=valid_col, label_delim=label_delim)
        return
    from zoo.train.evaluate import evaluate, format_report

    if str(source).lower().endswith(".onnx"):
        raise click.UsageError("zoo evaluate scores a checkpoint; for an .onnx file use 'zoo predict MODEL.onnx DIR --tta ...'")
    result = evaluate(source, data, split=split, batch_size=batch_size, memory_mb=memory_mb, device=device, amp=amp,
                      columns=_columns(path_col, label_col, valid_col, label_delim), threshold=threshold, tta=tta)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(format_report(result))


@click.command("mistakes")
@click.argument("source", metavar="SOURCE", type=click.Path())
@DATA
@TABLE
@SPLIT
@click.option("--min-prob", type=float, default=0.95, show_default=True,
              help="List images labelled with at least this probability as a class their folder is not.")
@click.option("--sheet", type=click.Path(dir_okay=False), help="Contact sheet PNG [confident.png beside SOURCE].")
@click.option("--batch-size", type=int, default=256, show_default=True)
@json_option("Print JSON (every mistake) instead of the first 20.")
def mistakes_command(source: str, data: str, split: str, min_prob: float, sheet: str | None, batch_size: int,
                     as_json: bool, path_col: str | None = None, label_col: str | None = None,
                     valid_col: str | None = None, label_delim: str = " ") -> None:
    """Confident mistakes of SOURCE (a checkpoint): images it labels with probability >= --min-prob although
    their folder says otherwise, e.g. cats shown to an airplane-vs-bird net, with a contact sheet.

    \b
    Examples:
      zoo mistakes runs/net/best --data pics/ --min-prob 0.95
      zoo mistakes runs/net/best --data cifar_all/ --split all --sheet wrong.png
    """
    from zoo.train.confident import confident_mistakes

    sheet_path = sheet or str(Path(source) / "confident.png")
    report = confident_mistakes(source, data, min_prob, split=split, sheet=sheet_path, batch_size=batch_size,
                                columns=_columns(path_col, label_col, valid_col, label_delim))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    click.echo(f"{len(report.mistakes)} of {report.num_images} images ({100 * report.rate:.1f}%) are labelled"
               f" with probability >= {min_prob:g} as a class their folder is not")
    if report.unseen_classes:
        click.echo(f"folders the model has no class for: {', '.join(report.unseen_classes)}")
    for m in report.mistakes[:20]:
        click.echo(f"  {m.path}  {m.predicted} {100 * m.probability:.1f}%  (folder {m.folder or '?'})")
    if len(report.mistakes) > 20:
        click.echo(f"  ... and {len(report.mistakes) - 20} more (--json lists all)")
    if report.sheet:
        click.echo(f"contact sheet: {report.sheet}")
    if report.missing_glyphs:
        click.echo(f"zoo: no font here has glyphs for {report.missing_glyphs!r} (drawn as '?' on the sheet);"
                   " install one that has (Debian: fonts-noto-cjk) or set ZOO_FONT=/path/to/font.ttf", err=True)
