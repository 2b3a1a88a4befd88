"""`journeys customers export ID`: everything held about one customer, as one JSON
document (access and portability requests), from JOURNEYS_DATABASE_URL; and
`journeys customers erase ID`: the right to erasure (see docs/operations.md)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer

from cli.settings import load_settings

customers_app = typer.Typer(help="Customers' data: export or erase everything held about a customer.",
                            no_args_is_help=True)


@customers_app.command("export")
def export(customer_id: Annotated[str, typer.Argument(metavar="ID", help="The customer id")]) -> None:
    """Print one JSON document: profile, consent evidence, messages, clicks, answers, events,
    points, coupons, segments, journeys and suppressions of their number."""
    from core.customers.export import UnknownCustomer, export_customer
    from processes.wiring import open_migrated_database

    db = open_migrated_database(load_settings())
    try:
        document = export_customer(db, customer_id)
    except UnknownCustomer as err:
        print(f"error: {err}", file=sys.stderr)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


@customers_app.command("erase")
def erase(customer_id: Annotated[str, typer.Argument(metavar="ID", help="The customer id")],
          yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False) -> None:
    """Erase the customer for good (right to erasure).

    Personal data removed or made anonymous in every table, their runs ended, their
    number's opt-out kept under a keyed hash, an audit record written. Prints the rows
    erased or made anonymous, per table. Needs the database and Temporal."""
    from core.customers.erasure import UnknownCustomer
    from processes.commands import ErasureStopped
    from processes.commands import erase as erase_command

    if not yes and not typer.confirm(f"Erase customer {customer_id!r} for good? This cannot be undone"):
        print("nothing was erased", file=sys.stderr)
        raise typer.Exit(1)
    try:
        report = asyncio.run(erase_command(load_settings(), customer_id))
    except (UnknownCustomer, ErasureStopped) as err:
        print(f"error: {err}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"erased customer {customer_id} (audit record {report.erasure_id})")
    for table, count in report.counts.items():
        print(f"  {table}: {count}")
    if report.runs_not_stopped:
        print(f"error: {len(report.runs_not_stopped)} run(s) could not be stopped now (Temporal did not answer): "
              "their texts cannot go out; run the erasure again to stop them", file=sys.stderr)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(customers_app, name="customers")
