"""``zoo list`` and ``zoo info``."""

from __future__ import annotations

import json

import click

from zoo.cli._options import format_count, model_argument, parse_key_values
from zoo.registry import model_info
from zoo.text import table

PASSTHROUGH_NAMESPACES = ("timm/", "torchvision/")


@click.command("list")
@click.argument("patterns", nargs=-1)
@click.option("--family", help="Only this family (e.g. resnet, vit, lecture).")
@click.option("--tag", help="Only models with this tag (e.g. cifar, lecture, pretrained).")
@click.option("--all", "show_all", is_flag=True, help="Include the timm/ and torchvision/ pass-throughs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(patterns: tuple[str, ...], family: str | None, tag: str | None, show_all: bool, as_json: bool) -> None:
    """List architectures, optionally filtered by fnmatch PATTERNS ('resnet*', 'timm/vit_*')."""
    from zoo.cli import _plugin_manager

    reg = _plugin_manager().models
    if family is not None and family not in reg.families():
        raise click.ClickException(f"unknown family {family!r}; choose from: {', '.join(reg.families())}")
    if tag is not None and tag not in reg.tags():
        raise click.ClickException(f"unknown tag {tag!r}; choose from: {', '.join(reg.tags())}")
    specs = reg.list(list(patterns) or None, family=family, tag=tag)
    hidden = 0
    if not (patterns or show_all or family or tag):
        shown = [s for s in specs if not s.name.startswith(PASSTHROUGH_NAMESPACES)]
        hidden = len(specs) - len(shown)
        specs = shown
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in specs], indent=2))
        return
    if not specs:
        hint = ""
        if patterns:
            close = reg.suggestions(patterns[0].strip("*?"))
            hint = f"; did you mean {', '.join(close)}?" if close else f"; try zoo list '*{patterns[0].strip('*')}*'"
        click.echo(f"no models match{hint}", err=True)
        return
    rows = [
        [s.name, s.family, "x".join(map(str, s.input_size)), format_count(s.params), s.source]
        for s in specs
    ]
    click.echo(table(rows, ["NAME", "FAMILY", "INPUT", "PARAMS", "SOURCE"]))
    if hidden:
        click.echo(f"\n(+{hidden} pass-through models: zoo list 'timm/*', zoo list 'torchvision/*', or --all)")


@click.command("info")
@model_argument("name")
@click.option("--num-classes", type=int, help="Build with this many classes.")
@click.option("--in-chans", type=int, help="Build with this many input channels.")
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE", help="Architecture argument (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info_command(name: str, num_classes: int | None, in_chans: int | None, model_args: tuple[str, ...], as_json: bool) -> None:
    """Build model NAME and describe it: parameters, input, classifier, layers, paper."""
    from zoo.cli import _plugin_manager

    spec = _plugin_manager().models.get(name)
    kwargs = parse_key_values(model_args)
    from zoo.factory import create_model
    from zoo.summary import describe_model

    model = create_model(spec, num_classes=num_classes, in_chans=in_chans, **kwargs)
    desc = describe_model(model, spec)
    info = {**spec.to_dict(), **desc}
    built = model_info(model)
    info["num_classes"] = built.num_classes
    info["input_size"] = [built.in_chans, *spec.input_size[1:]]
    info["weights"] = [_weights_status(spec, w) for w in spec.weights]
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    lines = [f"{spec.name}  ({spec.family or 'no family'}, from {spec.source})"]
    if spec.description:
        lines.append(f"  {spec.description}")
    if spec.paper:
        lines.append(f"paper:          {spec.paper}" + (f" ({spec.year})" if spec.year else ""))
    lines += [
        f"input size:     {'x'.join(map(str, info['input_size']))}",
        f"normalisation:  mean {tuple(spec.mean)} std {tuple(spec.std)}",
        f"classes:        {info['num_classes']}",
        f"parameters:     {desc['params']:,} total, {desc['trainable_params']:,} trainable",
        f"features:       {desc['num_features']} (input of the classifier)",
        f"classifier:     {spec.classifier or '?'}: {desc['classifier_repr']}",
    ]
    if spec.first_conv:
        lines.append(f"first conv:     {spec.first_conv}")
    if spec.aliases:
        lines.append(f"aliases:        {', '.join(spec.aliases)}")
    if spec.weights:
        lines.append("weights:")
        for w in info["weights"]:
            where = f"{w['source']}: {w['path']}" if w["path"] else f"not found: {w['ways_out']}"
            extra = ", ".join(x for x in (w["license"] and f"license {w['license']}", w["from"] and f"from {w['from']}") if x)
            lines.append(f"  {w['tag']:<14}  {where}" + (f"  ({extra})" if extra else ""))
    lines.append("layers:")
    rows = [[layer["name"], layer["type"], f"{layer['params']:,}"] for layer in desc["layers"]]
    lines += ["  " + line for line in table(rows, ["NAME", "TYPE", "PARAMS"]).splitlines()]
    click.echo("\n".join(lines))


def _weights_status(spec, weights) -> dict:
    """Where one set of weights is on this machine (offline look-up only), or why not."""
    from zoo.pretrained import locate_weights, ways_out

    found = locate_weights(spec, weights)
    return {
        "tag": weights.tag,
        "path": found[0] if found else None,
        "source": found[1] if found else None,
        "ways_out": None if found else ways_out(spec, weights),
        "license": weights.license or None,
        "from": weights.source if weights.source and weights.source != spec.source else None,
        "classes": weights.num_classes,
        "layout": weights.layout,
    }
