"""The `journeys` command. Commands are thin: parse, call one core function, render."""

from __future__ import annotations

import os
import sys

import typer

app = typer.Typer(
    name="journeys",
    help="Customer-loyalty SMS journeys: validate, simulate and run them on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register_commands() -> None:
    # Each module adds its own commands; importing them here keeps `main` small.
    import importlib

    for name in ("cli.authoring", "cli.sms", "cli.runtime"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue
        module.register(app)


_register_commands()


def run() -> None:
    """Entry point: leave through os._exit so the Temporal SDK cannot abort at exit."""
    code = 0
    try:
        app(standalone_mode=False)
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except typer.Exit as err:
        code = err.exit_code
    except typer.Abort:
        code = 1
    except Exception as err:  # click's usage errors and the like
        import click

        if isinstance(err, click.ClickException):
            err.show()
            code = err.exit_code
        else:
            raise
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
