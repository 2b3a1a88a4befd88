"""`journeys import customers.csv`: create or update customers from a CSV file;
`journeys import shopify`: the shop's customers and order history through its Admin API."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from cli import output
from cli.settings import load_settings

if TYPE_CHECKING:
    from core.intake.importing import ImportReport

SHOWN_REJECTIONS = 20


def register(app: typer.Typer) -> None:
    app.command("import")(import_customers)


def import_customers(
    file: Annotated[Path, typer.Argument(help="CSV with an `id` column (docs/importing.md), or `shopify`: the "
                                              "shop's customers and orders (docs/shopify.md)", show_default=False)],
    journeys_dir: Annotated[Path | None, typer.Option("--journeys", help="Journeys directory")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write every rejected row here, as CSV "
                                                                 "(line, id, field, reason)")] = None,
    restart: Annotated[bool, typer.Option("--restart", help="shopify: read everything again from the first "
                                                            "page (nothing is doubled)")] = False,
) -> None:
    """Create or update customers from a CSV file: phones become E.164, consent keeps its
    evidence, and bad rows are reported with their reasons. Running it again updates,
    never duplicates. Exit 0 when the file was processed, even with rejected rows.
    `journeys import shopify` reads the shop instead: resumable, never duplicating."""
    if str(file) == "shopify" and not file.exists():
        _import_shopify(journeys_dir, restart)
        return
    from core.intake.importing import ImportFileError, ImportStopped, scan_file
    from language.validate import InvalidJourneys
    from processes.commands import import_file

    console = output.console()
    errors = output.console(stderr=True)
    try:
        rows = scan_file(file)
        out = report.open("w", newline="", encoding="utf-8") if report is not None else None
    except ImportFileError as err:
        errors.print(f"[red]error:[/red] {escape(str(err))}")
        raise typer.Exit(1) from None
    except OSError as err:
        errors.print(f"[red]error:[/red] cannot write the report {escape(str(report))}: {err.strerror or err}")
        raise typer.Exit(1) from None
    result: ImportReport | None = None
    problem: str | None = None
    settings = load_settings()
    try:
        with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"),
                      TimeRemainingColumn(), console=errors, transient=True) as bar:
            task = bar.add_task("import", total=rows)
            try:
                result = asyncio.run(import_file(settings, file, journeys_dir=journeys_dir,
                                                 progress=lambda done: bar.advance(task, done)))
            except (ImportFileError, InvalidJourneys) as err:
                problem = str(err)
            except ImportStopped as err:
                result, problem = err.report, str(err)
        if result is not None:
            _summary(console, result)
            _rejections(console, result)
            if out is not None:
                _write_report(out, result)
                console.print(f"all {len(result.rejected)} rejected row(s) written to {escape(str(report))}")
    finally:
        if out is not None:
            out.close()
    if problem is not None:
        errors.print(f"[red]error:[/red] {escape(problem)}")
        raise typer.Exit(1)


def _import_shopify(journeys_dir: Path | None, restart: bool) -> None:
    from core.intake.importing import ImportStopped
    from language.validate import InvalidJourneys
    from processes.settings import SettingsError
    from processes.shop_import import backfill_shopify
    from shops.base import ShopError

    console = output.console()
    errors = output.console(stderr=True)
    settings = load_settings()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=errors, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(resource: str, done: int, total: int | None) -> None:
            if resource not in tasks:
                tasks[resource] = bar.add_task(resource, total=total)
            bar.update(tasks[resource], completed=done)

        try:
            result = asyncio.run(backfill_shopify(settings, journeys_dir=journeys_dir, progress=progress,
                                                  restart=restart))
        except (SettingsError, InvalidJourneys, ImportStopped, ShopError) as err:
            said = str(err).rstrip(".")
            again = ". Run it again to go on from where it stopped." if isinstance(err, ShopError) else ""
            errors.print(f"[red]error:[/red] {escape(said)}{again}")
            raise typer.Exit(1) from None
    console.print(f"{result.customers} customers and {result.orders} orders read; {result.purchases} new "
                  "purchase(s) recorded")
    if result.already_done:
        console.print(f"{' and '.join(result.already_done)} finished by an earlier run: --restart reads them again")


def _summary(console: Console, result: ImportReport) -> None:
    console.print(f"{result.total} rows: [green]{result.created} created[/green], {result.updated} updated, "
                  f"{result.unchanged} unchanged, "
                  f"[{'red' if result.rejected else 'green'}]{len(result.rejected)} rejected[/]")
    if result.consent_events:
        console.print(f"{result.consent_events} consent change(s) announced (opted_in / opted_out events, which "
                      "may start journeys)")


def _rejections(console: Console, result: ImportReport) -> None:
    if not result.rejected:
        return
    table = Table(show_header=True, header_style="bold")
    for column in ("line", "id", "field", "reason"):
        table.add_column(column, overflow="fold")
    for row in result.rejected[:SHOWN_REJECTIONS]:
        table.add_row(str(row.line), escape(row.customer_id or ""), escape(row.field), escape(row.reason))
    console.print(table)
    more = len(result.rejected) - SHOWN_REJECTIONS
    if more > 0:
        console.print(f"... and {more} more (--report FILE writes them all)")


def _write_report(stream: TextIO, result: ImportReport) -> None:
    writer = csv.writer(stream)
    writer.writerow(["line", "id", "field", "reason"])
    for row in result.rejected:
        writer.writerow([row.line, row.customer_id or "", row.field, row.reason])
