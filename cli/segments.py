"""`journeys segments`: each segment with its size and last refresh; `journeys segments
refresh [NAME]...` refreshes rule segments now, against JOURNEYS_DATABASE_URL and Temporal;
`journeys segments preview RULE` counts who a rule matches now, changing nothing."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli import output
from cli.settings import load_settings

console = output.console()
errors = output.console(stderr=True)

segments_app = typer.Typer(help="Segments: sizes and last refresh; refresh rule segments now; preview a rule.",
                           invoke_without_command=True)

JourneysDir = Annotated[Path | None, typer.Option("--journeys", help="Journeys directory (default: JOURNEYS_DIR or "
                                                  "journeys)")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON")]


def _catalog(journeys_dir: Path | None) -> Any:
    from language.validate import InvalidJourneys, load_catalog

    settings = load_settings()
    try:
        return load_catalog(journeys_dir or settings.journeys_dir)
    except InvalidJourneys as err:
        errors.print(f"[red]error:[/red] {err}", markup=True, highlight=False)
        raise typer.Exit(1) from None


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


@segments_app.callback()
def list_segments(ctx: typer.Context, journeys_dir: JourneysDir = None, as_json: AsJson = False) -> None:
    """List each segment: rule or manual, its size, and when it was last refreshed."""
    if ctx.invoked_subcommand is not None:
        return
    from core.segments.refresh import overview
    from processes.wiring import open_migrated_database

    catalog = _catalog(journeys_dir)
    db = open_migrated_database(load_settings())
    try:
        rows = overview(catalog, db)
    finally:
        db.dispose()
    if as_json:
        print(json.dumps([asdict(row) for row in rows], indent=2, default=str))
        return
    table = Table(show_header=True, header_style="bold")
    for column, justify in (("segment", "left"), ("kind", "left"), ("size", "right"), ("last refresh", "left"),
                            ("rule / description", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        refreshed = _when(row.refreshed_at) if row.kind != "manual" else "-"
        table.add_row(row.name, row.kind, f"{row.size:,}", refreshed, row.definition)
    console.print(table)
    from language.durations import format_duration

    every = format_duration(catalog.segments.refresh)
    console.print(f"rule segments refresh every {every} (Temporal schedule segments-refresh)", highlight=False)


@segments_app.command("refresh")
def refresh_segments(
    names: Annotated[list[str] | None, typer.Argument(metavar="NAME", help="Rule segments (default: all)")] = None,
    journeys_dir: JourneysDir = None,
    no_events: Annotated[bool, typer.Option("--no-events", help="Change memberships without segment_entered/"
                                            "segment_exited events (a first backfill that must start no journeys)")
                         ] = False,
    as_json: AsJson = False,
) -> None:
    """Refresh rule segments now; who entered and left is announced, starting their journeys."""
    from core.segments import refresh as segments
    from processes.commands import refresh_segments as run_refresh

    _catalog(journeys_dir)  # a clean error for an invalid directory, before connecting
    settings = load_settings()
    try:
        report = asyncio.run(run_refresh(settings, names, announce=not no_events, journeys_dir=journeys_dir))
    except segments.SegmentError as err:
        raise typer.BadParameter(str(err), param_hint="NAME") from None
    if as_json:
        print(json.dumps(asdict(report), indent=2, default=str))
        return
    table = Table(show_header=True, header_style="bold")
    for column in ("segment", "entered", "exited", "size", "seconds"):
        table.add_column(column, justify="left" if column == "segment" else "right")
    for row in report.segments:
        table.add_row(row.segment, f"{row.entered:,}", f"{row.exited:,}", f"{row.size:,}", f"{row.seconds:.2f}")
    console.print(table)
    console.print(f"{report.events:,} events routed, {report.started:,} journeys started, in {report.seconds:.2f}s",
                  highlight=False)


@segments_app.command("preview")
def preview_rule(
    rule: Annotated[str, typer.Argument(metavar="RULE",
                                        help="A segment rule, e.g. \"customer.orders_in('90d') >= 2\"")],
    sample: Annotated[int, typer.Option("--sample", min=0, max=100, help="How many customer ids to show")] = 5,
    at: Annotated[str | None, typer.Option("--at", help="Evaluate at this moment (ISO 8601 with a zone; "
                                           "default: now)")] = None,
    as_json: AsJson = False,
) -> None:
    """How many customers RULE matches now, and a few of their ids: the audience before it goes live."""
    from datetime import datetime

    from core.segments.preview import preview
    from language.segment_sql import RuleError
    from processes.wiring import open_migrated_database

    moment = None
    if at is not None:
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            raise typer.BadParameter(f"{at!r} is not a moment: write e.g. 2026-03-02T09:00:00Z",
                                     param_hint="--at") from None
        if moment.tzinfo is None:
            raise typer.BadParameter("needs a time zone, e.g. 2026-03-02T09:00:00Z", param_hint="--at")
    db = open_migrated_database(load_settings())
    try:
        result = preview(db, rule, at=moment, sample=sample)
    except RuleError as err:
        raise typer.BadParameter(str(err), param_hint="RULE") from None
    finally:
        db.dispose()
    if as_json:
        print(json.dumps(asdict(result), indent=2, default=str))
        return
    share = f" ({result.matches / result.customers:.1%})" if result.customers else ""
    console.print(f"{result.matches:,} of {result.customers:,} customers match{share} as of {_when(result.at)}",
                  highlight=False)
    if result.sample:
        more = ", ..." if result.matches > len(result.sample) else ""
        console.print(f"e.g. {', '.join(result.sample)}{more}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(segments_app, name="segments")
