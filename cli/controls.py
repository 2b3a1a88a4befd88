"""`journeys pause|resume|stop|drain JOURNEY [--version V]` and `journeys controls`: an
operator's controls of a journey, stored in the database (see docs/operations.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli import output
from cli.settings import load_settings

console = output.console()
errors = output.console(stderr=True)

Journey = Annotated[str, typer.Argument(help="Journey id")]
Version = Annotated[str | None, typer.Option("--version", help="Only this version (content hash); default: all")]
Note = Annotated[str | None, typer.Option("--note", help="Why, for the record (e.g. a ticket number)")]
JourneysDir = Annotated[Path | None, typer.Option("--journeys", help="Journeys directory")]


def _apply(journey: str, command: str, version: str | None, note: str | None, journeys_dir: Path | None) -> None:
    from processes.commands import control_journey

    try:
        applied = asyncio.run(control_journey(load_settings(), journey, command, version=version, note=note,
                                              journeys_dir=journeys_dir))
    except KeyError as err:
        raise typer.BadParameter(str(err.args[0]), param_hint="--version" if version else "JOURNEY") from None
    which = "every version" if applied.version == "*" else f"version {applied.version}"
    schedule = f"; schedule {applied.schedule}" if applied.schedule else ""
    console.print(f"{journey} ({which}): {applied.state}; {applied.runs_signalled} running runs told{schedule}",
                  highlight=False)


def pause(journey: Journey, version: Version = None, note: Note = None, journeys_dir: JourneysDir = None) -> None:
    """Admit no one and hold every send of its runs until resumed."""
    _apply(journey, "pause", version, note, journeys_dir)


def resume(journey: Journey, version: Version = None, note: Note = None, journeys_dir: JourneysDir = None) -> None:
    """Back to normal: admits again, held sends go out."""
    _apply(journey, "resume", version, note, journeys_dir)


def stop(journey: Journey, version: Version = None, note: Note = None, journeys_dir: JourneysDir = None) -> None:
    """End every run with outcome `stopped`; admit no one until resumed."""
    _apply(journey, "stop", version, note, journeys_dir)


def drain(journey: Journey, version: Version = None, note: Note = None, journeys_dir: JourneysDir = None) -> None:
    """Admit no one; let the runs finish."""
    _apply(journey, "drain", version, note, journeys_dir)


def list_controls() -> None:
    """The controls in force (no row: a journey runs as usual)."""
    from processes.commands import list_controls as fetch

    table = Table("journey", "version", "state", "by", "since (UTC)", "note")
    for row in fetch(load_settings()):
        table.add_row(row.journey_id, "all" if row.version == "*" else row.version, row.state, row.changed_by,
                      row.changed_at.isoformat(timespec="seconds"), row.note or "")
    console.print(table)


def register(app: typer.Typer) -> None:
    for command in (pause, resume, stop, drain):
        app.command()(command)
    app.command("controls")(list_controls)
