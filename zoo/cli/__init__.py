"""The ``zoo`` command line: a lazy root group.

Commands are imported only when they run, so ``zoo list`` and ``zoo --help``
never pay for torch. Every ``ZooError`` becomes a one-line message and exit
status 1; other exceptions too, with a hint to re-run with ``--debug``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from zoo import __version__

# command name -> "module:attribute"
COMMANDS: dict[str, str] = {
    "list": "zoo.cli.models:list_command",
    "info": "zoo.cli.models:info_command",
    "plugins": "zoo.cli.plugins:plugins_command",
    "finetune": "zoo.cli.finetune:finetune_command",
    "pretrain": "zoo.cli.finetune:pretrain_group",
    "export": "zoo.cli.export:export_command",
    "bench": "zoo.cli.export:bench_command",
    "predict": "zoo.cli.predict:predict_command",
    "serve": "zoo.cli.serve:serve_command",
    "train": "zoo.cli.train:train_command",
    "lr-find": "zoo.cli.lr_find:lr_find_command",
    "evaluate": "zoo.cli.evaluate:evaluate_command",
    "mistakes": "zoo.cli.evaluate:mistakes_command",
    "compare": "zoo.cli.compare:compare_command",
}

_state = {"debug": False}


def debug_enabled() -> bool:
    return _state["debug"]


def _plugin_manager():
    from zoo import plugins

    manager = plugins.get_manager()
    manager.warn_failures(echo=lambda line: click.echo(line, err=True))
    return manager


class ZooGroup(click.Group):
    """Imports built-in commands on demand and adds the plugins' commands."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(COMMANDS)
        names.update(_plugin_manager().commands)
        return sorted(names)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        ref = COMMANDS.get(name)
        if ref is not None:
            from zoo._lazy import resolve

            return resolve(ref)
        found = _plugin_manager().commands.get(name)
        return found[0] if found else None

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else None
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            import difflib

            close = difflib.get_close_matches(name, self.list_commands(ctx), n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else "; see 'zoo --help'"
            raise click.UsageError(f"no command {name!r}{hint}", ctx)
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return self._invoke(ctx)
        except click.ClickException as exc:
            if os.environ.get("ZOO_NPROC_ERRORS"):  # a rank started by --nproc: the launcher prints it once
                from zoo.train.distributed import record_child_error

                if record_child_error(exc.format_message()):
                    raise click.exceptions.Exit(exc.exit_code) from None
            raise

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            if debug_enabled():
                raise
            if is_user_error(exc):
                raise click.ClickException(str(exc)) from None
            from zoo.text import describe

            raise click.ClickException(f"{describe(exc)} (re-run with --debug for the traceback)") from None


def is_user_error(exc: BaseException) -> bool:
    """A ZooError, or the torch-free runtime's own error (checked only once the runtime is loaded)."""
    from zoo.errors import ZooError

    if isinstance(exc, ZooError):
        return True
    runtime_errors = sys.modules.get("zoo.runtime.errors")
    return runtime_errors is not None and isinstance(exc, runtime_errors.RuntimeInputError)


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    _state["debug"] = bool(value)
    return value


def _set_no_plugins(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    # Eager, so 'zoo --no-plugins --help' also skips the plugins.
    if value:
        from zoo import plugins

        plugins.reset()
        plugins.configure(no_plugins=True)
    return value


@click.group("zoo", cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="zoo", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, is_eager=True, callback=_set_debug, expose_value=False,
              help="Show full tracebacks on errors.")
@click.option("--no-plugins", is_flag=True, is_eager=True, callback=_set_no_plugins, expose_value=False,
              help="Load only the built-in plugins (see also ZOO_PLUGINS).")
def cli() -> None:
    """zoo: a model zoo and transfer-learning toolkit for PyTorch.

    \b
    Start with:
      zoo list                         the architectures
      zoo finetune NAME --data DIR     transfer learning on an image folder
      zoo train NAME --data DIR        train from scratch
    """
    from zoo import plugins

    plugins.set_quiet(True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    from zoo import plugins

    plugins.set_quiet(True)
    cli.main(args=argv, prog_name="zoo")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
