"""The ``zoo count-params`` command."""

from __future__ import annotations

import click


@click.command("count-params")
@click.argument("names", nargs=-1, required=True)
def count_params(names: tuple[str, ...]) -> None:
    """Print the parameter count of each model NAME."""
    from zoo import create_model
    from zoo.summary import count_parameters

    for name in names:
        click.echo(f"{name}\t{count_parameters(create_model(name)):,}")
