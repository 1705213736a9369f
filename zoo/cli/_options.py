"""Option helpers shared by the commands."""

from __future__ import annotations

import ast
from typing import Any, Iterable

import click


def parse_key_values(pairs: Iterable[str], option: str = "--model-arg") -> dict[str, Any]:
    """``["kernel_size=5", "act=relu"]`` -> ``{"kernel_size": 5, "act": "relu"}``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint=option)
        out[key] = parse_value(raw.strip())
    return out


def parse_value(raw: str) -> Any:
    """Python literals where they parse (5, 0.5, True, None, [1, 2]), else the string."""
    lowered = raw.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered in {"none", "null"}:
        return None
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def complete_model_name(ctx: click.Context, param: click.Parameter, incomplete: str):
    """Shell completion of registry names (torch-free)."""
    from click.shell_completion import CompletionItem

    from zoo.plugins import list_specs

    items = []
    for spec in list_specs(f"{incomplete}*"):
        for name in (spec.name, *spec.aliases):
            if name.startswith(incomplete):
                items.append(CompletionItem(name, help=spec.family))
    return items[:500]


def model_argument(name: str = "name", **kwargs: Any):
    return click.argument(name, shell_complete=complete_model_name, **kwargs)


def format_count(n: int | None) -> str:
    if n is None:
        return "-"
    if n >= 1_000_000_000:
        return f"{n / 1e9:.1f}B"
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 10_000:
        return f"{n / 1e3:.1f}K"
    if n >= 1_000:
        return f"{n / 1e3:.1f}K"
    return str(n)


def deprecated(old: str, new: str):
    """A callback for an old option spelling: it still works for one release, with a warning line."""

    def warn(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and value != () and value is not False:
            click.echo(f"zoo: warning: {old} is deprecated and goes in the next release; use {new}", err=True)
        return value

    return warn


def device_option(default: str = "auto"):
    """``--device``, validated the same way by every command (zoo.devices.select_device)."""
    from zoo.devices import DEVICE_HELP

    def check(ctx: click.Context, param: click.Parameter, value: str) -> str:
        value = (value or "auto").strip().lower()
        head = value.split(":", 1)[0]
        if head not in ("auto", "cpu", "cuda", "mps") or (":" in value and not value.split(":", 1)[1].isdigit()):
            raise click.BadParameter(f"unknown device {value!r}; use {DEVICE_HELP}", ctx=ctx, param=param)
        return value

    return click.option("--device", default=default, show_default=True, callback=check, help=f"Device: {DEVICE_HELP}.")


def quiet_option(help: str = "No progress bars or epoch lines."):
    """``-q`` means quiet in every command."""
    return click.option("--quiet", "-q", is_flag=True, help=help)


def json_option(help: str = "Print JSON on stdout instead of text."):
    return click.option("--json", "as_json", is_flag=True, help=help)


def memory_option(default: float = 512):
    """``--memory-mb``: the activation budget that sizes inference batches (zoo.data.budget)."""
    return click.option("--memory-mb", type=float, default=default, show_default=True,
                        help="Memory budget of one inference batch's activations; sizes the batches.")


DATA_HELP = ("Image folder (class sub-folders; or train/ and val/), a .csv/.tsv table of paths and labels,"
             " or SCHEME:NAME such as demo:cats.")


def table_options(multi_label: bool = True):
    """The options that read a ``--data`` table (zoo.data.table): its column names and label delimiter."""
    options = [
        click.option("--path-col", help="The table's image path column [path, file, filename, image, ...]."),
        click.option("--label-col", help="The table's label column [label, labels, tags, class, ...]."),
        click.option("--valid-col", help="The table's column marking validation rows [is_valid when present]."),
    ]
    if multi_label:
        options.append(click.option("--multi-label", is_flag=True,
                                    help="Several labels per table row (sigmoid outputs, BCE loss)."))
    options.append(click.option("--label-delim", default=" ", show_default=repr(" "),
                                help="What separates the labels of one row with --multi-label."))

    def apply(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn

    return apply
