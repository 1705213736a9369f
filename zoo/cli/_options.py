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


AMP_HELP = "Mixed precision: bfloat16 autocast on CPUs with bfloat16 units (AVX512-BF16/AMX), CUDA's own [on where there is one]."


def amp_option():
    """``--amp/--no-amp`` (None: the rule of zoo.devices.autocast_choice)."""
    return click.option("--amp/--no-amp", default=None, help=AMP_HELP)


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
    options.append(click.option("--label-delim", default=" ", show_default="a space",
                                help="What separates the labels of one row with --multi-label."))

    def apply(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn

    return apply


# -- recipe files (--config) -----------------------------------------------------

RECIPE_SUFFIXES = (".toml", ".yaml", ".yml", ".json")
# Keys of a recorded run (config.json's train_args) that are the run's own, not options to repeat.
_RECORDED_ONLY = {"task", "world_size", "out", "resume"}


def config_option():
    """``--config FILE``: option values from a TOML/YAML recipe, or a checkpoint's config.json to rerun it.

    The file fills click's ``default_map``, so flags on the command line still win.
    """

    def load(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None:
            ctx.default_map = {**(ctx.default_map or {}), **read_recipe(value, ctx.command)}
        return value

    return click.option("--config", "config_file", type=click.Path(dir_okay=False), is_eager=True,
                        expose_value=False, callback=load, metavar="FILE",
                        help="Options from a TOML/YAML recipe (keys: the long option names), or a checkpoint's"
                             " config.json to rerun it; flags given here win.")


def shipped_recipes() -> dict[str, Any]:
    """The recipes that come with zoo (``zoo/assets/recipes/NAME.toml``): name -> path."""
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "assets" / "recipes"
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


# The recipes that are procedures (zoo.transfer.recipes); every other --recipe name is a shipped preset file.
PROCEDURES = ("frozen", "lp-ft", "auto")


def recipe_option():
    """``--recipe NAME``: a procedure (:data:`PROCEDURES`, zoo.transfer.recipes) or a preset shipped with zoo
    (:func:`shipped_recipes`: option values, run by ``frozen``, the options-as-given procedure); ``--config``
    and flags win over a preset's values."""

    def load(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
        if value is None or value in PROCEDURES:
            return value or "frozen"
        recipes = shipped_recipes()
        if value not in recipes:
            raise click.BadParameter(f"no recipe {value!r}; choose {', '.join(PROCEDURES)}, or a preset zoo ships:"
                                     f" {', '.join(recipes) or 'none'}", ctx=ctx, param=param)
        ctx.default_map = {**read_recipe(str(recipes[value]), ctx.command), **(ctx.default_map or {})}
        return "frozen"

    return click.option("--recipe", is_eager=True, callback=load, metavar="NAME",
                        help="frozen [default]: the options as given; lp-ft: linear head, then the whole network at"
                             " a small --lr; auto: the better of the two on validation within --budget"
                             " (docs/transfer.md); or a preset's options: linear-probe, gradual-unfreeze, full"
                             " (zoo/assets/recipes; --config and flags win over it).")


def _load_recipe_file(path: str) -> dict[str, Any]:
    import json
    from pathlib import Path

    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in RECIPE_SUFFIXES:
        raise click.BadParameter(f"{path!r} is not a recipe; use a .toml, .yaml or .json file", param_hint="--config")
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path!r}: {exc.strerror or exc}", param_hint="--config") from None
    try:
        if suffix == ".toml":
            import tomllib

            values = tomllib.loads(text)
        elif suffix == ".json":
            values = json.loads(text)
        else:
            try:
                import yaml
            except ImportError:
                raise click.ClickException(f"reading the YAML recipe {path!r} needs PyYAML: pip install pyyaml"
                                           " (or write the recipe as TOML)") from None
            values = yaml.safe_load(text) or {}
    except click.ClickException:
        raise
    except Exception as exc:  # tomllib, json and yaml each have their own error type
        raise click.BadParameter(f"{path!r} does not parse: {first_line(exc)}", param_hint="--config") from None
    if not isinstance(values, dict):
        raise click.BadParameter(f"{path!r} must hold a table of option = value", param_hint="--config")
    return values


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def recorded_options(config: dict[str, Any]) -> dict[str, Any]:
    """The options of the run a checkpoint's config.json records, keyed by parameter name."""
    args = dict(config.get("train_args") or {})
    values: dict[str, Any] = {k: v for k, v in args.items() if k not in _RECORDED_ONLY and v is not None}
    finetune = dict(config.get("finetune") or {})
    source = finetune.pop("source_argument", None)
    finetune.pop("source", None)  # a description ("checkpoint runs/x/best"), not the argument
    values.update({k: v for k, v in finetune.items() if v is not None})
    if "plot" in values:
        values["no_plot"] = not values.pop("plot")
    if "progress" in values:
        values["quiet"] = not values.pop("progress")
    if values.get("cache") == "auto":
        values.pop("cache")
    if config.get("finetune") is not None:
        values["source"] = source
    else:
        values["name"] = config.get("zoo_architecture") or config.get("architecture")
    return values


def read_recipe(path: str, command: click.Command) -> dict[str, Any]:
    """A recipe's values for ``command``'s parameters (its ``default_map``); unknown keys are refused."""
    import difflib

    raw = _load_recipe_file(path)
    recorded = "train_args" in raw and "architecture" in raw
    if recorded:
        raw = recorded_options(raw)
    params: dict[str, click.Parameter] = {}
    for param in command.params:
        if param.name in (None, "config_file", "help"):
            continue
        params[param.name] = param
        for opt in param.opts:
            params.setdefault(opt.lstrip("-"), param)
            params.setdefault(opt.lstrip("-").replace("-", "_"), param)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        param = params.get(str(key))
        if param is None:
            if recorded:
                continue  # what a recorded run holds beyond this command's options
            shown = sorted({p.opts[0].lstrip("-") if isinstance(p, click.Option) else p.name
                            for p in params.values()})
            close = difflib.get_close_matches(str(key), shown, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; the keys are the long option names: {', '.join(shown)}"
            raise click.BadParameter(f"{path!r} has an unknown key {key!r}{hint}", param_hint="--config")
        out[param.name] = _recipe_value(value, param)
    return out


def _recipe_value(value: Any, param: click.Parameter) -> Any:
    """A TOML/YAML value in the form click parses: lists as 'a,b', key tables as KEY=VALUE lists."""
    if getattr(param, "multiple", False):
        if isinstance(value, dict):
            return [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in value.items()]
        return list(value) if isinstance(value, (list, tuple)) else [value]
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value
