"""``zoo export`` and ``zoo bench``."""

from __future__ import annotations

import json

import click

from zoo.cli._options import device_option, json_option, parse_key_values, quiet_option
from zoo.text import table


def _formats(values: tuple[str, ...]) -> list[str]:
    # "--format onnx,safetensors" and "--format onnx --format safetensors" both work
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


class _ExportCommand(click.Command):
    """``-q`` is --quiet, as in every command; ``-q fp16`` (its old meaning, --quantize) still works this release."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out, i = [], 0
        while i < len(args):
            arg = args[i]
            value = arg[2:] if arg.startswith("-q") and len(arg) > 2 else (args[i + 1] if arg == "-q" and i + 1 < len(args) else None)
            if value in QUANTIZE_KINDS:
                click.echo("zoo: warning: -q for --quantize is deprecated and goes in the next release;"
                           f" -q now means --quiet: use --quantize {value}", err=True)
                out += ["--quantize", value]
                i += 1 if arg != "-q" else 2
                continue
            out.append(arg)
            i += 1
        return super().parse_args(ctx, out)


QUANTIZE_KINDS = ("fp16", "int8")


@click.command("export", cls=_ExportCommand)
@click.argument("source", metavar="SOURCE")
@click.option("--format", "-f", "formats", multiple=True, default=("onnx",), show_default=True,
              metavar="FORMAT", help="onnx, safetensors, all, or a plugin's format (repeatable, or comma-separated).")
@click.option("--out", "-o", "out_dir", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--name", default="model", show_default=True, help="File name stem: NAME.onnx, NAME.safetensors.")
@click.option("--opset", type=int, default=18, show_default=True, help="ONNX opset (14 or newer).")
@click.option("--exporter", type=click.Choice(["auto", "torchscript", "dynamo"]), default="auto", show_default=True,
              help="auto: TorchScript exporter, falling back to dynamo.")
@click.option("--spatial", type=click.Choice(["auto", "dynamic", "static"]), default="auto", show_default=True,
              help="Dynamic height/width: where the model allows (auto), required, or never.")
@click.option("--data", help="Image folder or SCHEME:NAME (demo:cats) for validation, int8 calibration and accuracy.")
@click.option("--batch-size", type=int, default=4, show_default=True, help="The larger validation batch.")
@click.option("--atol", type=float, default=1e-4, show_default=True, help="Largest allowed ONNX-vs-PyTorch difference.")
@click.option("--warn-only", is_flag=True, help="Keep an export that exceeds --atol, with a warning.")
@click.option("--quantize", "quantize", multiple=True, type=click.Choice(QUANTIZE_KINDS),
              help="Also write NAME.fp16.onnx / NAME.int8.onnx (accuracy change measured on --data).")
@click.option("--int8-mode", type=click.Choice(["auto", "static", "dynamic"]), default="auto", show_default=True,
              help="static: calibrated on --data (CNNs); dynamic: MatMul/Gemm only (transformers); auto: static if the graph has convolutions.")
@click.option("--max-accuracy-drop", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Fail a static int8 export that loses more points of accuracy on --data images not used to calibrate.")
@click.option("--calibration-images", type=click.IntRange(min=1), default=128, show_default=True,
              help="Images of --data set aside to calibrate static int8 (at most half of them).")
@click.option("--overwrite", is_flag=True,
              help="Replace an earlier export of --name in --out (its files are moved aside to OUT.old-TIME).")
@click.option("--pretrained", is_flag=True, help="SOURCE is a model name: load its pretrained weights.")
@click.option("--num-classes", type=int, help="SOURCE is a model name: build with this many classes.")
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE", help="Architecture argument (repeatable).")
@json_option("Print the written files and validation as JSON.")
@quiet_option("No validation lines on stderr.")
def export_command(source: str, formats: tuple[str, ...], out_dir: str, name: str, opset: int, exporter: str,
                   spatial: str, data: str | None, batch_size: int, atol: float, warn_only: bool,
                   quantize: tuple[str, ...], int8_mode: str, max_accuracy_drop: float, calibration_images: int,
                   overwrite: bool, pretrained: bool, num_classes: int | None,
                   model_args: tuple[str, ...], as_json: bool, quiet: bool) -> None:
    """Export SOURCE (a model name, or a checkpoint directory) to ONNX and/or safetensors.

    ONNX exports are checked with onnx.checker and against PyTorch on random
    and real images at batch 1 and --batch-size; a difference above --atol
    fails the export and leaves no file behind.
    """
    from pathlib import Path

    from zoo.export import export

    log = (lambda line: None) if (as_json or quiet) else (lambda line: click.echo(line, err=True))
    written = export(
        source, _formats(formats), out_dir,
        pretrained=pretrained, num_classes=num_classes, model_kwargs=parse_key_values(model_args), overwrite=overwrite,
        name=name, opset=opset, exporter=exporter, spatial=spatial, data=data, batch_size=batch_size,
        atol=atol, warn_only=warn_only, quantize=list(quantize), log=log,
        quantize_options={"int8_mode": int8_mode, "max_accuracy_drop": max_accuracy_drop,
                          "calibration_images": calibration_images},
    )
    if as_json:
        out = {fmt: str(path) for fmt, path in written.items()}
        report = Path(out_dir) / f"{name}.validation.json"
        if "onnx" in written and report.is_file():
            out["validation"] = json.loads(report.read_text())
        click.echo(json.dumps(out, indent=2))
        return
    for fmt, path in written.items():
        click.echo(f"{fmt}: {path}")


@click.command("bench")
@click.argument("source", metavar="SOURCE")
@click.option("--runs", type=int, default=30, show_default=True, help="Timed batch-1 runs per engine.")
@click.option("--warmup", type=int, default=5, show_default=True, help="Untimed runs first.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Batch size for throughput.")
@click.option("--throughput-runs", type=int, default=5, show_default=True, help="Timed runs at --batch-size.")
@click.option("--threads", type=int, help="Threads for both engines (default: their own choice).")
@device_option()
@json_option("Print JSON instead of a table.")
def bench_command(source: str, runs: int, warmup: int, batch_size: int, throughput_runs: int,
                  threads: int | None, device: str, as_json: bool) -> None:
    """Latency and throughput of PyTorch eager vs ONNX Runtime for SOURCE (name, checkpoint or .onnx)."""
    from zoo.export.bench import bench

    log = (lambda line: None) if as_json else (lambda line: click.echo(line, err=True))
    report = bench(source, runs=runs, warmup=warmup, batch_size=batch_size, throughput_runs=throughput_runs,
                   threads=threads, device=device, log=log)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    rows = [
        [r["engine"], r["device"], f"{r['latency_ms']:.2f}", f"{r['latency_p90_ms']:.2f}", f"{r['throughput_ips']:.1f}"]
        for r in report["results"]
    ]
    c, h, w = report["input_size"]
    click.echo(f"{report['architecture']} at {c}x{h}x{w}, {report['threads']} threads")
    click.echo(table(rows, ["ENGINE", "DEVICE", "LATENCY MS (B=1, MEDIAN)", "P90 MS", f"IMAGES/S (B={batch_size})"]))
    if "speedup_latency" in report:
        click.echo(
            f"onnxruntime vs pytorch: {report['speedup_latency']:.2f}x latency, {report['speedup_throughput']:.2f}x throughput"
        )
