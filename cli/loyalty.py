"""`journeys points CUSTOMER` (balance, tier, expiry, referral code, ledger history) and
`journeys loyalty run` (the daily loyalty job, now). See docs/loyalty.md."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cli import output
from cli.settings import load_settings

console = output.console()
errors = output.console(stderr=True)

loyalty_app = typer.Typer(help="The loyalty program: the daily job.", no_args_is_help=True)

JourneysDir = Annotated[Path | None, typer.Option("--journeys", help="Journeys directory (default: JOURNEYS_DIR or "
                                                                     "journeys/)")]


def register(app: typer.Typer) -> None:
    app.command("points")(points)
    app.add_typer(loyalty_app, name="loyalty")


def points(
    customer_id: Annotated[str, typer.Argument(help="Customer id", show_default=False)],
    journeys_dir: JourneysDir = None,
    limit: Annotated[int, typer.Option(help="How many ledger entries to show, newest first", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Show a customer's points: balance, tier, 12-month earnings, next expiry, referral code, history."""
    from core.customers.records import UnknownCustomer
    from language.validate import InvalidJourneys
    from processes.commands import points_account

    settings = load_settings()
    try:
        account = points_account(settings, customer_id, limit=limit, journeys_dir=journeys_dir)
    except InvalidJourneys as err:
        errors.print(f"[red]error:[/red] {escape(str(err))}")
        raise typer.Exit(1) from None
    except UnknownCustomer:
        errors.print(f"[red]error:[/red] no customer {escape(customer_id)!r}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(asdict(account), indent=2, default=_iso))
        return
    _print_account(account)


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _print_account(account: Any) -> None:
    tier = account.tier or "none"
    if account.next_tier:
        tier += f" ({account.points_to_next_tier:,} more points earned to reach {account.next_tier})"
    expiry = (f"{account.next_expiry_points:,} points on {_when(account.next_expiry_at)} UTC"
              if account.next_expiry_at else "none")
    console.print(f"[bold]{escape(account.customer_id)}[/bold]")
    console.print(f"  balance:          {account.balance:,} points")
    console.print(f"  tier:             {escape(tier)}")
    console.print(f"  earned 12 months: {account.earned_last_12_months:,} points")
    console.print(f"  next expiry:      {expiry}")
    console.print(f"  referral code:    {account.referral_code or '-'}")
    if not account.history:
        console.print("no ledger entries yet")
        return
    table = Table(title=f"ledger, newest first ({len(account.history)} of {account.history_total}), times UTC",
                  header_style="bold")
    for column, justify in (("when", "left"), ("points", "right"), ("reason", "left"), ("source", "left"),
                            ("expires", "left")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for line in account.history:
        expires = _when(line.expires_at) + (" (expired)" if line.expired else "") if line.expires_at else "never"
        table.add_row(_when(line.occurred_at), f"{line.points:+,}", escape(line.reason), escape(line.source), expires)
    console.print(table)


@loyalty_app.command("run")
def run(journeys_dir: JourneysDir = None) -> None:
    """Run the daily loyalty job now (safe to repeat): expiries, tier downgrades, reminders.

    Refreshes balances and tiers after expiries (a tier change emits tier_changed) and
    emits the points_expiring reminders that are due: what the loyalty-daily schedule
    runs at 03:00."""
    from language.validate import InvalidJourneys
    from processes.commands import run_loyalty_now

    settings = load_settings()
    try:
        result = asyncio.run(run_loyalty_now(settings, journeys_dir))
    except InvalidJourneys as err:
        errors.print(f"[red]error:[/red] {escape(str(err))}")
        raise typer.Exit(1) from None
    console.print(f"{result.customers} customers with points looked at: {result.refreshed} refreshed, "
                  f"{result.tier_changes} tier change(s), {result.reminders} points_expiring reminder(s)")
