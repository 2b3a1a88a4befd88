"""`journeys import shopify` (core/events/backfill.py) against the fake Admin API, on
SQLite and PostgreSQL: customers with their consent, orders as the webhooks' purchase
events, pages followed by their Link headers; interrupted midway and run again, every
customer and order is there once and the tiers are right; a later webhook for an imported
order changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from core.clock import utcnow
from core.events.backfill import import_shopify
from core.intake import shopify
from core.sms.replies import ReplySender
from processes.simulate import Simulation
from shops.base import ShopUnavailable
from shops.shopify import ShopifyAdmin
from store.db import session_scope
from store.tables import ConsentRecord, Customer, Event, ImportCursor
from tests.runtime.support import CountingSender, write_journeys
from tests.shops.fake_admin import TOKEN, FakeAdmin


def ago(days: int) -> str:
    return (utcnow() - timedelta(days=days)).isoformat()  # offsets from now: the 12-month tier window


def customer(n: int, consent: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"id": 1000 + n, "email": f"c{n}@example.com", "first_name": f"C{n}",
                             "phone": f"+1201555{n:04d}"}
    if consent:
        found["sms_marketing_consent"] = {"state": consent, "opt_in_level": "single_opt_in",
                                          "consent_updated_at": "2026-01-10T12:00:00Z"}
    return found


def order(n: int, who: int, amount: str, *, status: str = "paid", **more: Any) -> dict[str, Any]:
    return {"id": 5000 + n, "customer": {"id": 1000 + who}, "financial_status": status, "total_price": amount,
            "currency": "USD", "processed_at": ago(40 - n), "line_items": [{"title": "Boot", "quantity": 1,
                                                                           "price": amount}], **more}


@pytest.fixture
def fake() -> Iterator[FakeAdmin]:
    with FakeAdmin() as server:
        server.customers = [customer(1, "subscribed"), customer(2, "unsubscribed"), customer(3), customer(4),
                            customer(5)]
        server.orders = [
            order(1, 1, "300.00"), order(2, 1, "250.00"), order(3, 2, "100.00"),
            order(4, 3, "80.00", status="pending"),  # never paid: no purchase
            order(5, 4, "200.00", cancelled_at=ago(5)),  # bought, then cancelled: no points left
            order(6, 5, "120.00", refunds=[{"id": 77, "order_id": 5006, "created_at": ago(2), "transactions": [
                {"kind": "refund", "status": "success", "amount": "20.00"}]}]),
        ]
        yield server


def rows(db: Any, table: Any) -> list[Any]:
    with session_scope(db) as session:
        return list(session.exec(select(table)).all())


async def test_an_interrupted_import_resumes_and_imports_everything_once(env, db, journeys_dir: Path,
                                                                         fake: FakeAdmin) -> None:
    catalog = write_journeys(journeys_dir, {})
    sender = CountingSender()
    admin = ShopifyAdmin("shop.example", TOKEN, base_url=fake.url, sleep=lambda _: None)
    fake.fail_page = 4  # customers: pages 0-2; orders: page 3 read, page 4 fails (every retry)
    seen: list[tuple[str, int, int | None]] = []
    async with Simulation(env, catalog, db, sender=sender) as sim:
        replies = ReplySender(db, env.client, catalog.settings)
        with pytest.raises(ShopUnavailable):
            await import_shopify(sim.router, replies, admin, progress=lambda *a: seen.append(a))
        assert len(rows(db, Customer)) == 5
        assert len([e for e in rows(db, Event) if e.type == "purchase"]) == 2  # the first orders page
        cursors = {c.name: (c.cursor, c.done) for c in rows(db, ImportCursor)}
        assert cursors["shopify:customers"] == (None, 5)
        assert cursors["shopify:orders"][1] == 2 and "page_info=2" in (cursors["shopify:orders"][0] or "")

        requests_before = fake.page_requests
        report = await import_shopify(sim.router, replies, admin, progress=lambda *a: seen.append(a))
        assert report.already_done == ("customers",) and report.orders == 4 and report.purchases == 3
        assert fake.page_requests - requests_before == 2  # orders' pages 2 and 3 only: customers not read again

        # A later webhook for an imported order is a duplicate on the event path.
        routed = await sim.router.route(shopify.plan("orders/paid", fake.orders[0]).events[0], source="shopify")
        assert routed.duplicate
        again = await import_shopify(sim.router, replies, admin, restart=True)  # everything again: nothing new
        assert again.purchases == 0 and again.customers == 5
    assert ("orders", 6, 6) in seen and ("customers", 5, 5) in seen

    events = rows(db, Event)
    purchases = sorted(e.id for e in events if e.type == "purchase")
    assert purchases == [f"shopify:order:{5000 + n}" for n in (1, 2, 3, 5, 6)]
    assert sorted(e.id for e in events if e.type == "purchase_refunded") == [
        "shopify:order:5005:cancelled", "shopify:refund:77"]
    assert all(e.routed_at is not None for e in events)  # history: never routed to journeys later
    by_id = {c.id: c for c in rows(db, Customer)}
    assert (by_id["shopify-1001"].orders_count, by_id["shopify-1001"].total_spent) == (2, 550.0)
    assert (by_id["shopify-1001"].points, by_id["shopify-1001"].tier) == (550, "gold")
    assert (by_id["shopify-1002"].points, by_id["shopify-1002"].tier) == (100, "silver")
    assert by_id["shopify-1004"].points == 0 and by_id["shopify-1005"].points == 100
    assert by_id["shopify-1003"].orders_count == 0
    assert (by_id["shopify-1001"].sms_consent, by_id["shopify-1002"].sms_consent) == ("opted_in", "opted_out")
    [record] = [r for r in rows(db, ConsentRecord) if r.customer_id == "shopify-1001"]
    assert record.source == "shopify:import" and "opt_in_level=single_opt_in" in (record.disclosure or "")
    assert sender.sent == []  # no confirmation text to the imported list


# --- `journeys import shopify`, as typed ---------------------------------------------------


async def test_the_cli_imports_the_shop_says_where_it_stopped_and_goes_on(env, db, journeys_dir: Path,
                                                                         fake: FakeAdmin) -> None:
    from typer.testing import CliRunner

    from cli.main import app as journeys

    catalog = write_journeys(journeys_dir, {})
    settings = {"JOURNEYS_DATABASE_URL": db.url.render_as_string(hide_password=False),
                "TEMPORAL_ADDRESS": env.client.service_client.config.target_host}
    shop = {"JOURNEYS_SHOPIFY_SHOP_DOMAIN": "shop.example", "JOURNEYS_SHOPIFY_ADMIN_TOKEN": TOKEN,
            "JOURNEYS_SHOPIFY_ADMIN_BASE_URL": fake.url}

    def run(environment: dict[str, str]) -> Any:
        return CliRunner().invoke(journeys, ["import", "shopify", "--journeys", str(journeys_dir)], env=environment)

    async with Simulation(env, catalog, db, sender=CountingSender()):
        unset = await asyncio.to_thread(run, settings)
        assert unset.exit_code == 1 and "JOURNEYS_SHOPIFY_SHOP_DOMAIN" in unset.stderr

        fake.fail_page = 4  # the second orders page fails, every retry
        stopped = await asyncio.to_thread(run, settings | shop)
        assert stopped.exit_code == 1, stopped.output
        said = " ".join(stopped.stderr.split())  # as printed, wrapped to the terminal
        assert "orders.json: HTTP 500. Run it again to go on from where it stopped." in said
        assert TOKEN not in stopped.output
        assert len(rows(db, Customer)) == 5

        fake.fail_page = None
        finished = await asyncio.to_thread(run, settings | shop)
        assert finished.exit_code == 0, finished.output
        said = " ".join(finished.stdout.split())
        assert "0 customers and 4 orders read; 3 new purchase(s) recorded" in said
        assert "customers finished by an earlier run" in said
    purchases = sorted(e.id for e in rows(db, Event) if e.type == "purchase")
    assert purchases == [f"shopify:order:{5000 + n}" for n in (1, 2, 3, 5, 6)]
