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

    for name in ("cli.authoring", "cli.sms", "cli.runtime", "cli.schedules", "cli.segments", "cli.loyalty",
                 "cli.importing"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue
        module.register(app)


_register_commands()


def run() -> None:
    """Entry point: leave through os._exit so the Temporal SDK cannot abort at exit
    (sdk-python issue #300) and the exit code is always the command's own."""
    code = 0
    try:
        app()  # standalone mode: usage errors are printed and become exit code 2
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except Exception:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
