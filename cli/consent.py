"""`journeys consent export [--since DATE] [--csv]`: every consent change with its
evidence, oldest first, for an auditor or a carrier's campaign review."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated

import typer

from cli.settings import load_settings

consent_app = typer.Typer(help="SMS consent: the audit export of every change with its evidence.",
                          no_args_is_help=True)


@consent_app.command("export")
def export(
    since: Annotated[str | None, typer.Option(help="Only changes that occurred at or after this ISO date (00:00 "
                                              "UTC) or datetime with its zone")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header instead of JSON lines")] = False,
) -> None:
    """Print each consent change (customer_id, status, source, disclosure, occurred_at,
    recorded_at), oldest first: one JSON object per line, or CSV."""
    from core.customers.consent_export import FIELDS, consent_changes, parse_since
    from processes.wiring import open_migrated_database

    try:
        start = parse_since(since) if since is not None else None
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--since") from None
    out = sys.stdout
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n") if as_csv else None
    if writer is not None:
        writer.writeheader()
    db = open_migrated_database(load_settings())
    try:
        for row in consent_changes(db, since=start):
            if writer is not None:
                writer.writerow(row)
            else:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    finally:
        db.dispose()


def register(app: typer.Typer) -> None:
    app.add_typer(consent_app, name="consent")
