"""`journeys rewards list|redeem` (spend points for a coupon) and `journeys coupons import`
(a pool of codes the shop's platform made). See docs/loyalty.md."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli import output
from cli.settings import load_settings

console = output.console()
errors = output.console(stderr=True)

rewards_app = typer.Typer(help="Rewards: what points buy (loyalty.yaml rewards).", no_args_is_help=True)
coupons_app = typer.Typer(help="Coupon codes: pools imported from the shop's platform.", no_args_is_help=True)

JourneysDir = Annotated[Path | None, typer.Option("--journeys", help="Journeys directory (default: JOURNEYS_DIR or "
                                                                     "journeys/)")]
MAX_FILE_BYTES = 10 * 1024 * 1024


def register(app: typer.Typer) -> None:
    app.add_typer(rewards_app, name="rewards")
    app.add_typer(coupons_app, name="coupons")


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(1)


@rewards_app.command("list")
def list_rewards(journeys_dir: JourneysDir = None) -> None:
    """The rewards of loyalty.yaml: points, coupon series, discount."""
    from language.validate import InvalidJourneys
    from processes.wiring import open_catalog

    try:
        catalog = open_catalog(load_settings(), journeys_dir)
    except InvalidJourneys as err:
        raise _fail(str(err)) from None
    rules = catalog.loyalty
    if not rules.rewards:
        console.print("no rewards in loyalty.yaml")
        return
    table = Table(title=f"rewards (SMS: {rules.rewards_keyword} <reward>)", header_style="bold")
    for column in ("reward", "points", "coupon", "discount", "description"):
        table.add_column(column, overflow="fold")
    for name, reward in rules.rewards.items():
        series = rules.coupons[reward.coupon]
        table.add_row(name, f"{reward.points:,}", reward.coupon + (" (pool)" if series.pool else ""),
                      escape(series.discount), escape(reward.description or ""))
    console.print(table)


@rewards_app.command("redeem")
def redeem(
    customer_id: Annotated[str, typer.Argument(help="Customer id", show_default=False)],
    reward: Annotated[str, typer.Argument(help="A reward of loyalty.yaml", show_default=False)],
    key: Annotated[str | None, typer.Option("--key", help="Idempotency key: the same key again returns the same "
                                                          "coupon and spends nothing more (default: a new one)")
                   ] = None,
    journeys_dir: JourneysDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Spend a customer's points for a reward's coupon; prints the code."""
    from core.customers.records import UnknownCustomer
    from core.loyalty.rewards import RewardRefused
    from language.validate import InvalidJourneys
    from processes.rewards import redeem_reward

    key = key or f"cli:{uuid.uuid4().hex}"
    try:
        done = redeem_reward(load_settings(), customer_id, reward, key=key, journeys_dir=journeys_dir)
    except (InvalidJourneys, RewardRefused, ValueError) as err:
        raise _fail(str(err)) from None
    except UnknownCustomer:
        raise _fail(f"no customer {customer_id!r}") from None
    if as_json:
        print(json.dumps({"customer_id": customer_id, "reward": done.reward, "points": done.points,
                          "balance": done.balance, "code": done.code, "series": done.series,
                          "discount": done.discount, "key": key, "repeat": done.repeat,
                          "expires_at": done.expires_at.isoformat() if done.expires_at else None}))
        return
    spent = "already redeemed with this key: nothing more spent" if done.repeat else f"{done.points:,} points spent"
    expiry = f", expires {done.expires_at:%Y-%m-%d %H:%M} UTC" if done.expires_at else ""
    console.print(f"{escape(customer_id)}: {done.reward} -> coupon {done.code} ({escape(done.discount)}{expiry}); "
                  f"{spent}, balance {done.balance:,} (key {escape(key)})")


@coupons_app.command("import")
def import_codes(
    series: Annotated[str, typer.Argument(help="A coupon series with `pool: true`", show_default=False)],
    file: Annotated[Path, typer.Argument(help="CSV: one code per line, or a header row with a `code` column",
                                         exists=True, dir_okay=False, show_default=False)],
    journeys_dir: JourneysDir = None,
) -> None:
    """Import a pool of codes for a series; all or nothing (bad or repeated lines are named)."""
    from core.loyalty.coupons import PoolImportError
    from language.validate import InvalidJourneys
    from processes.rewards import UnknownSeries, import_pool

    if file.stat().st_size > MAX_FILE_BYTES:
        raise _fail(f"{file} is over {MAX_FILE_BYTES // (1024 * 1024)} MB: split it")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise _fail(f"{file} is not UTF-8 text") from None
    try:
        added, size = import_pool(load_settings(), series, text, journeys_dir=journeys_dir)
    except PoolImportError as err:
        for problem in err.problems[:50]:
            errors.print(f"{escape(str(file))}: {escape(problem)}")
        more = f" (and {len(err.problems) - 50} more)" if len(err.problems) > 50 else ""
        raise _fail(f"nothing imported: {len(err.problems)} problem(s){more}") from None
    except (InvalidJourneys, UnknownSeries) as err:
        raise _fail(str(err)) from None
    console.print(f"{added:,} codes imported into the {escape(series)} pool ({size:,} not issued yet)")
