"""Windows and habits end to end: line items checked at the event edge, purchases stored
by the event path (and backfilled by migration 0012), the same answers at runtime and in
SQL, and `journeys segments preview`. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import typer
from pydantic import ValidationError
from sqlalchemy import JSON, column, select
from sqlalchemy import table as sa_table
from typer.testing import CliRunner

from cli import segments as segment_cli
from core.customers.context import expression_context
from core.event import EventIn
from core.events.router import EventRouter
from core.segments.preview import preview
from language.expressions import evaluate
from language.segment_sql import CUSTOMERS, RuleError, compile_rule
from store.db import open_database, session_scope
from store.migrate import upgrade
from store.tables import Customer, Purchase, PurchaseItem
from store.types import UtcDateTime
from tests.conftest import POSTGRES_ADMIN_URL
from tests.runtime.support import write_journeys

NOW = datetime(2026, 3, 2, 15, 0, 0, 123456, tzinfo=UTC)
ITEMS = [{"product": "latte", "category": "coffee", "quantity": 2, "price": 4.5}, {"category": "beans"}]


@pytest.mark.parametrize(("items", "problem"), [
    ("coffee", "items must be a list of line items"),
    ([{"product": "latte"}, "beans"], "items[1] must be an object"),
    ([{"quantity": 2}], "items[0] needs a product or a category"),
    ([{"category": ""}], "items[0].category must be non-empty text"),
    ([{"category": 5}], "items[0].category must be non-empty text"),
    ([{"product": "x" * 65}], "items[0].product must be at most 64 characters"),
    ([{"product": "latte", "quantity": 0}], "items[0].quantity must be a whole number from 1"),
    ([{"product": "latte", "quantity": 1.5}], "items[0].quantity must be a whole number from 1"),
    ([{"product": "latte", "price": -1}], "items[0].price must be a number from 0"),
    ([{"product": "latte", "price": "4.50"}], "items[0].price must be a number from 0"),
    ([{"product": "latte", "colour": "red"}], "items[0] has unknown field(s) colour"),
    ([{"product": "latte"}] * 201, "items holds at most 200 line items"),
])
def test_line_items_are_checked_at_the_edge(items: Any, problem: str) -> None:
    with pytest.raises(ValidationError) as err:
        EventIn(id="o1", type="purchase", customer_id="c1", properties={"amount": 9, "items": items})
    [error] = err.value.errors()
    assert error["loc"] == ("properties",) and problem in error["msg"], error
    assert EventIn(id="o1", type="purchase", customer_id="c1", properties={"items": ITEMS})
    assert EventIn(id="o1", type="signup", customer_id="c1", properties={"items": "anything"})  # not a purchase


async def test_the_event_path_stores_purchases_and_the_runtime_and_sql_agree(journeys_dir: Path, db, env) -> None:
    catalog = write_journeys(journeys_dir, {})
    router = EventRouter(catalog, db, env.client)
    bought = [(NOW - timedelta(days=90), 20, ITEMS), (NOW - timedelta(days=60), 30.5, [{"product": "sencha",
                                                                                        "category": "tea"}]),
              (NOW - timedelta(days=30), 10, None), (NOW + timedelta(days=1), 99, [{"category": "mugs"}])]
    for n, (at, amount, items) in enumerate(bought):
        properties: dict[str, Any] = {"amount": amount} | ({"items": items} if items else {})
        for _ in range(2):  # a repeat changes nothing
            await router.route(EventIn(id=f"order-{n}", type="purchase", customer_id="c1", occurred_at=at,
                                       properties=properties))
    with session_scope(db) as session:
        customer = session.get(Customer, "c1")
        assert customer is not None
        customer.birthday = date(1990, 3, 3)
        session.add(customer)
    expected = {
        "customer.orders_in('90d')": 2,  # 90 days ago exactly is outside, tomorrow's is not yet
        "customer.orders_in('91d')": 3,
        "customer.spent_in('365d')": 60.5,
        "customer.bought('coffee')": True, "customer.bought('latte')": True, "customer.bought('beans', '60d')": False,
        "customer.bought('mugs')": False, "customer.bought('Coffee')": False,
        "customer.categories": ["beans", "coffee", "tea"],
        "customer.age": 35,  # 36 tomorrow
        "customer.purchase_interval_days": 30,
        "customer.days_until_due": 0,
        "customer.clicks_in('30d')": 0, "customer.messages_in('30d')": 0, "customer.replies_in('30d')": 0,
        "customer.days_since_last_click": None,
    }
    with session_scope(db, readonly=True) as session:
        assert session.execute(select(Purchase.total).order_by(Purchase.occurred_at)).scalars().all() == [
            20, 30.5, 10, 99]
        assert len(session.execute(select(PurchaseItem)).all()) == 4
        customer = session.get(Customer, "c1")
        assert customer is not None
        context = expression_context(session, catalog, customer, NOW)
        assert {source: evaluate(source, context) for source in expected} == expected
        for source, value in expected.items():
            if isinstance(value, bool | int | float) and value is not None:
                rule = source if isinstance(value, bool) else f"{source} == {value}"
                matched = session.execute(select(CUSTOMERS.c.id).where(compile_rule(rule, NOW))).scalars().all()
                assert matched == (["c1"] if value is not False else []), rule


def _fresh(kind: str, tmp_path: Path) -> tuple[Any, str | None]:
    if kind == "sqlite":
        return open_database(f"sqlite:///{tmp_path / 'old.db'}"), None
    name = f"journeys_backfill_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return open_database(POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"), name


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_migration_0012_backfills_the_purchases_already_stored(kind: str, tmp_path: Path) -> None:
    db, name = _fresh(kind, tmp_path)
    try:
        upgrade(db, "0006")
        rows = [("p1", {"amount": 12.5, "items": ITEMS}), ("p2", {"amount": "oops"}),
                ("p3", {"items": [{"category": "tea"}, {"category": ""}, "junk"]}), ("s1", {"amount": 5})]
        events = sa_table("events", column("id"), column("customer_id"), column("type"),
                          column("occurred_at", UtcDateTime()), column("received_at", UtcDateTime()),
                          column("properties", JSON()), column("source"))
        with db.begin() as connection:
            connection.execute(events.insert(), [
                {"id": event_id, "customer_id": "c1", "type": "signup" if event_id == "s1" else "purchase",
                 "occurred_at": NOW - timedelta(days=n), "received_at": NOW, "properties": properties,
                 "source": "api"} for n, (event_id, properties) in enumerate(rows)])
        upgrade(db)
        with session_scope(db, readonly=True) as session:
            purchases = session.execute(select(Purchase.event_id, Purchase.total, Purchase.occurred_at)
                                        .order_by(Purchase.event_id)).all()
            items = session.execute(select(PurchaseItem.event_id, PurchaseItem.category, PurchaseItem.quantity)
                                    .order_by(PurchaseItem.event_id, PurchaseItem.line)).all()
        assert [(p.event_id, p.total, p.occurred_at) for p in purchases] == [
            ("p1", 12.5, NOW), ("p2", 0.0, NOW - timedelta(days=1)), ("p3", 0.0, NOW - timedelta(days=2))]
        assert [tuple(i) for i in items] == [("p1", "coffee", 2), ("p1", "beans", 1), ("p3", "tea", 1)]
    finally:
        db.dispose()
        if name:
            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _seed(db: Any) -> None:
    with session_scope(db) as session:
        for n in range(12):
            session.add(Customer(id=f"c{n:02d}", orders_count=n, birthday=date(2000 - n, 1, 1)))
        session.flush()
        for n in range(12):
            for k in range(n % 3):
                session.add(Purchase(event_id=f"c{n:02d}-{k}", customer_id=f"c{n:02d}",
                                     occurred_at=NOW - timedelta(days=10 * (k + 1)), total=10.0))


def test_preview_counts_who_a_rule_matches_and_shows_a_few(db) -> None:
    _seed(db)
    found = preview(db, "customer.orders_in('30d') >= 2", at=NOW, sample=3)
    assert (found.matches, found.customers, found.sample) == (4, 12, ["c02", "c05", "c08"])
    assert preview(db, "customer.orders_in('30d') >= 2", at=NOW - timedelta(days=11)).matches == 0
    assert preview(db, "customer.age >= 30", at=NOW, sample=0).sample == []
    with pytest.raises(RuleError, match="customer has no field 'agee'"):
        preview(db, "customer.agee > 3", at=NOW)
    with pytest.raises(RuleError, match="'9' is not a duration"):
        preview(db, "customer.orders_in('9') > 3", at=NOW)


def test_segments_preview_prints_the_audience(db) -> None:
    _seed(db)
    app = typer.Typer()
    segment_cli.register(app)
    env = {"JOURNEYS_DATABASE_URL": db.url.render_as_string(hide_password=False)}
    run = CliRunner().invoke(app, ["segments", "preview", "customer.orders_in('30d') >= 1",
                                   "--at", NOW.isoformat()], env=env)
    assert run.exit_code == 0, run.output
    assert "8 of 12 customers match (66.7%)" in run.output and "e.g. c01, c02, c04, c05, c07, ..." in run.output
    as_json = CliRunner().invoke(app, ["segments", "preview", "customer.bought('coffee')", "--json",
                                       "--at", "2026-03-02T15:00:00Z"], env=env)
    assert as_json.exit_code == 0 and json.loads(as_json.output)["matches"] == 0
    bad = CliRunner().invoke(app, ["segments", "preview", "customer.orders_in(30) > 1"], env=env)
    assert bad.exit_code == 2 and "quoted window" in bad.output
    zone = CliRunner().invoke(app, ["segments", "preview", "customer.age > 1", "--at", "2026-03-02T15:00"], env=env)
    assert zone.exit_code == 2 and "time zone" in zone.output
