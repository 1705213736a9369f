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


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain left-aligned text table (numbers right-aligned)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def fmt(row: list[str]) -> str:
        cells = []
        for i, cell in enumerate(row):
            numeric = cell[:1].isdigit() and headers[i].isupper() and headers[i] in {"PARAMS", "TRAINABLE", "FROZEN"}
            cells.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return "  ".join(cells).rstrip()

    lines = [fmt(headers), fmt(["-" * w for w in widths])]
    lines.extend(fmt(r) for r in rows)
    return "\n".join(lines)
