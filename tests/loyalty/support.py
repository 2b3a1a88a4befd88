"""Helpers for the loyalty tests: a journeys directory with the shipped loyalty rules,
a router to send events through (no Temporal needed while no journey listens), and
readers for the ledger and the events the engine emitted."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from core.event import EventIn, RouteResult
from core.events.router import EventRouter
from language.catalog import Catalog
from language.validate import load_catalog
from store.db import session_scope
from store.tables import Customer, Event, PointsEntry

# A Monday, 15:00 UTC (10:00 in New York).
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)

SETTINGS = """
brand: Nordic Shoes
default_timezone: America/New_York
"""
LOYALTY = """
points: {per_currency_unit: 1, expire_after: 365d, expiry_reminder: 14d}
tiers:
  - {name: silver, min_points: 0}
  - {name: gold, min_points: 500}
  - {name: platinum, min_points: 2000}
punch_card: {every: 5, reward_points: 100}
referral: {referrer_points: 200, referee_points: 100}
coupons:
  WELCOME10: {discount: "10%", expires_in: 30d}
  WINBACK20: {discount: "20%", expires_in: 14d, prefix: WB}
"""


def loyalty_catalog(root: Path, *, loyalty: str = LOYALTY, journeys: dict[str, str] | None = None) -> Catalog:
    root.mkdir(parents=True, exist_ok=True)
    (root / "settings.yaml").write_text(textwrap.dedent(SETTINGS))
    (root / "loyalty.yaml").write_text(textwrap.dedent(loyalty))
    for name, text in (journeys or {}).items():
        (root / f"{name}.yaml").write_text(textwrap.dedent(text))
    return load_catalog(root)


def router_for(catalog: Catalog, db: Any, client: Any = None) -> EventRouter:
    """Without journeys, routing never calls Temporal: no client is needed."""
    return EventRouter(catalog, db, client)


async def purchase(router: EventRouter, customer: str, amount: Any, at: datetime, *, event_id: str | None = None,
                   **properties: Any) -> RouteResult:
    return await router.route(EventIn(id=event_id or f"order:{customer}:{at.isoformat()}:{amount}", type="purchase",
                                      customer_id=customer, occurred_at=at,
                                      properties={"amount": amount, **properties}))


def customer(db: Any, customer_id: str) -> Customer:
    with session_scope(db) as session:
        found = session.get(Customer, customer_id)
        assert found is not None, customer_id
        return found


def make_customer(db: Any, customer_id: str, **fields: Any) -> Customer:
    with session_scope(db) as session:
        row = Customer(id=customer_id, created_at=T0 - timedelta(days=30), updated_at=T0 - timedelta(days=30),
                       **fields)
        session.add(row)
        return row


def ledger(db: Any, customer_id: str) -> list[PointsEntry]:
    with session_scope(db) as session:
        return list(session.exec(select(PointsEntry).where(PointsEntry.customer_id == customer_id)
                                 .order_by(col(PointsEntry.occurred_at), col(PointsEntry.id))).all())


def events(db: Any, event_type: str, customer_id: str | None = None) -> list[Event]:
    with session_scope(db) as session:
        query = select(Event).where(Event.type == event_type)
        if customer_id is not None:
            query = query.where(Event.customer_id == customer_id)
        return list(session.exec(query.order_by(col(Event.occurred_at), col(Event.id))).all())


def balance(db: Any, customer_id: str, at: datetime) -> int:
    from core.customers.records import points_balance

    with session_scope(db) as session:
        return points_balance(session, customer_id, at)
