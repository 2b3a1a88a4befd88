"""`journeys customers export ID`: everything held about one customer, as one JSON
document (access and portability requests), from JOURNEYS_DATABASE_URL."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from cli.settings import load_settings

customers_app = typer.Typer(help="Customers' data: export everything held about a customer.", no_args_is_help=True)


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


def register(app: typer.Typer) -> None:
    app.add_typer(customers_app, name="customers")
