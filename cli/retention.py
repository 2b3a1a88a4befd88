"""`journeys retention run [--dry-run]`: the daily retention job now (see
docs/operations.md "Retention")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from cli import output
from cli.settings import load_settings

console = output.console()
errors = output.console(stderr=True)

retention_app = typer.Typer(help="Retention: anonymise or delete data past settings.yaml's periods.",
                            no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would change; change nothing")] = False,
    journeys_dir: Annotated[Path | None, typer.Option("--journeys", help="Journeys directory (default: "
                                                                         "JOURNEYS_DIR or journeys/)")] = None,
) -> None:
    """Run the retention job now (safe to repeat): what the retention-daily schedule runs at 04:30.

    Events, messages, links and email bodies past their period are anonymised (the rows stay, so
    reports keep their totals); old decisions of ended runs are deleted.
    Rows of running enrollments and events not yet routed are never touched."""
    from core.retention import ACTIONS, KINDS
    from language.validate import InvalidJourneys
    from processes.commands import run_retention_now

    settings = load_settings()
    try:
        report = run_retention_now(settings, dry_run=dry_run, journeys_dir=journeys_dir)
    except InvalidJourneys as err:
        errors.print(f"[red]error:[/red] {escape(str(err))}")
        raise typer.Exit(1) from None
    verb = "would be" if dry_run else ""
    for kind in KINDS:
        if kind in report.kept_forever:
            console.print(f"{kind:<10} kept forever (retention.{kind}: null)")
        else:
            console.print(f"{kind:<10} {report.changed[kind]:>9,} {verb + ' ' if verb else ''}{ACTIONS[kind]}")
    if dry_run:
        console.print("dry run: nothing changed")
