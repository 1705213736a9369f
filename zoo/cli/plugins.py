"""``zoo plugins``."""

from __future__ import annotations

import json

import click

from zoo.text import table


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """List loaded plugins: version, what each registers, and load errors."""
    from zoo import plugins

    manager = plugins.get_manager()
    infos = list(manager.plugins.values())
    if as_json:
        click.echo(json.dumps([i.to_dict() for i in infos], indent=2))
        return
    rows = []
    for info in infos:
        what = ", ".join(f"{len(v)} {k}" for k, v in info.registered.items() if v) or "-"
        status = "skipped" if info.skipped else ("ERROR" if info.errors else "ok")
        origin = "builtin" if info.builtin else f"{info.distribution or '?'} {info.version or ''}".strip()
        rows.append([info.name, origin, status, what])
    click.echo(table(rows, ["PLUGIN", "DISTRIBUTION", "STATUS", "REGISTERS"]))
    for info in infos:
        for err in info.errors:
            click.echo(f"\n{info.name}: {err}")
    for name, old, new in manager.models.overrides:
        click.echo(f"\nmodel {name!r} from {old!r} was overridden by {new!r}")
    if any(i.skipped for i in infos):
        click.echo("\nskipped plugins are excluded by ZOO_PLUGINS or --no-plugins")
