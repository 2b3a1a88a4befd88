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
                 "cli.importing", "cli.customers", "cli.consent", "cli.retention", "cli.reports", "cli.deploy",
                 "cli.rewards", "cli.scenarios", "cli.controls"):
        importlib.import_module(name).register(app)


_register_commands()


def explain(err: BaseException) -> str | None:
    """A one-line message for an error the user can fix (configuration, a journeys
    directory, an unreachable server); None for a bug, which keeps its traceback."""
    from pydantic import ValidationError

    from language.validate import InvalidJourneys
    from processes.dev import DevError
    from processes.settings import SettingsError

    if isinstance(err, ValidationError) and err.title == "ServiceSettings":
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        return f"the environment is not valid: {problems}"
    if isinstance(err, InvalidJourneys) and any("no such file or directory" in str(p) for p in err.problems):
        return f"{err}\n(no journeys directory there: run from the directory that holds it, or set JOURNEYS_DIR)"
    if isinstance(err, InvalidJourneys | DevError | SettingsError):
        return str(err)
    if isinstance(err, RuntimeError) and "client connect" in str(err).lower() and "certificate" in str(err).lower():
        return (f"the Temporal server's TLS certificate was refused ({err}): check TEMPORAL_TLS_CA (the CA that "
                "signed it) and TEMPORAL_TLS_SERVER_NAME (a name the certificate is for)")
    if isinstance(err, RuntimeError) and "client connect" in str(err).lower():
        return (f"cannot reach the Temporal server ({err}): start `journeys dev`, or set TEMPORAL_ADDRESS "
                "to a running server")
    if isinstance(err, OSError) and err.filename:
        return f"{err.strerror or err}: {err.filename}"
    return None


def run(args: list[str] | None = None) -> None:
    """Entry point: leave through os._exit so the Temporal SDK cannot abort at exit
    (sdk-python issue #300) and the exit code is always the command's own."""
    code = 0
    try:
        app(args=args)  # standalone mode: usage errors are printed and become exit code 2
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except Exception as err:
        message = explain(err)
        if message is None:
            import traceback

            traceback.print_exc()
        else:
            print(f"error: {message}", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
