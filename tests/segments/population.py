"""Generated customers for segment tests: every kind of value a rule meets, missing ones
and boundaries included (purchases exactly 30 days ago, to the microsecond)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from core.customers.context import expression_context
from core.customers.records import customer_view
from language.catalog import Catalog
from language.expressions import ExpressionError, build_context, is_true
from language.segment_sql import NUMBER_FIELDS
from store.db import session_scope
from store.tables import Click, Customer, Event, Link, Message, PointsEntry, Purchase, PurchaseItem, SegmentMembership

# A Monday afternoon, with microseconds: day boundaries must hold to the microsecond.
NOW = datetime(2026, 3, 2, 15, 0, 0, 123456, tzinfo=UTC)

_BOUNDARIES = [timedelta(days=d) + extra for d in (0, 1, 29, 30, 31, 179, 180, 181)
               for extra in (timedelta(0), timedelta(microseconds=1), -timedelta(microseconds=1))]
_NAMES = [None, "", "Alex", "alex", "Zoë", "Émile", "Z", "zo", "zoe", "ÿ", "Ω", "a b", "Åsa"]
_TIERS = [None, "silver", "gold", "platinum", "Gold", "", "vip"]
_LOCALES = [None, "en", "sv-SE", "north", "Alex"]
_CONSENT = ["none", "pending", "opted_in", "opted_out"]
_SCORES: list[Any] = [0, 1, 2, 3, 3.0, 2.5, -1, 10**12, "3", "abc", "", True, False, None, [], [1], {}, {"a": 1}]
_STORES: list[Any] = ["north", "south", "", "Alex", "en", 5, None, ["north"]]
# Around NOW's date (2 March), a leap day, the year's ends.
_BIRTHDAYS = [None, None, date(1990, 5, 17), date(1990, 3, 1), date(1990, 3, 2), date(2000, 3, 2), date(1990, 3, 3),
              date(1992, 2, 29), date(2004, 2, 29), date(1985, 12, 31), date(1985, 1, 1), date(2026, 3, 2),
              date(2026, 3, 3)]
_CATEGORIES = ["coffee", "tea", "Coffee", "beans", "mugs", "gold", "north"]  # gold, north: a tier, a store
_PRODUCTS = ["latte", "espresso", "coffee", "sencha", None]
# Moments around the windows rules use (30d, 90d, 365d, 1h, 2w), to the microsecond,
# and a few after NOW (nothing after the evaluation moment counts).
_WINDOW_EDGES = [timedelta(days=d) + extra for d in (0, 14, 30, 90, 365)
                 for extra in (timedelta(0), timedelta(microseconds=1), -timedelta(microseconds=1))] + [
    timedelta(hours=1), timedelta(hours=1, microseconds=1), -timedelta(microseconds=1), -timedelta(days=3)]
_VIPS: list[Any] = [True, False, 0, 1, 0.0, "yes", "", None, [], [0], {}, {"x": None}]


def _attributes(rng: random.Random) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for key, values in (("score", _SCORES), ("store", _STORES), ("vip", _VIPS), ("tags", [[], ["a"], "a", None])):
        if rng.random() < 0.75:
            attributes[key] = rng.choice(values)
    if rng.random() < 0.5:
        attributes["nested"] = rng.choice([{"city": "Oslo"}, {"city": "Bergen"}, {"city": None}, {}, "Oslo", 3])
    if rng.random() < 0.3:
        attributes["a b"] = rng.choice([1, 2, "1"])
    return attributes


def make_customers(rng: random.Random, count: int, now: datetime = NOW) -> list[Customer]:
    customers = []
    for i in range(count):
        orders = rng.choice([0, 0, 1, 1, 2, 3, 5, 12])
        spent = 0.0 if orders == 0 else rng.choice([0.0, rng.randrange(1, 8000) / 4, rng.randrange(1, 400) * 250.0])
        if orders and rng.random() < 0.04:  # a few big spenders, for average-based rules
            spent = rng.randrange(200, 2000) * 1000.0
        last = first = None
        if orders or rng.random() < 0.05:  # a few have purchase dates and no orders (imported history)
            if rng.random() < 0.4:
                ago = rng.choice(_BOUNDARIES)
            else:
                ago = timedelta(microseconds=rng.randrange(-2 * 86_400 * 10**6, 400 * 86_400 * 10**6))
            last = now - ago
            first = last - timedelta(days=rng.randrange(0, 900)) if rng.random() < 0.8 else last
        customers.append(Customer(
            id=f"c{i:04d}", first_name=rng.choice(_NAMES), last_name=rng.choice(_NAMES), email=None,
            locale=rng.choice(_LOCALES), timezone=rng.choice([None, "Europe/Oslo"]),
            birthday=rng.choice(_BIRTHDAYS), attributes=_attributes(rng),
            sms_consent=rng.choice(_CONSENT), orders_count=orders, total_spent=spent,
            first_purchase_at=first, last_purchase_at=last, points=rng.randrange(0, 3000),
            tier=rng.choice(_TIERS), created_at=now - timedelta(days=1000), updated_at=now))
    return customers


def seed(db: Any, seed_value: int, count: int, now: datetime = NOW,
         segments: tuple[str, ...] = ("vip", "active", "lapsed_30d")) -> list[str]:
    """Customers with points ledgers (some expired, some in the future) and memberships."""
    rng = random.Random(seed_value)
    customers = make_customers(rng, count, now)
    with session_scope(db) as session:
        for customer in customers:
            session.add(customer)
        session.flush()
        for customer in customers:
            for n in range(rng.choice([0, 0, 1, 2, 4])):
                occurred = now - timedelta(days=rng.randrange(-5, 500), seconds=rng.randrange(0, 86400))
                expires = rng.choice([None, occurred + timedelta(days=365), now, now + timedelta(microseconds=1)])
                session.add(PointsEntry(key=f"{customer.id}:{n}", customer_id=customer.id,
                                        points=rng.choice([50, 100, 250, 500, -100, 2000]), reason="test",
                                        occurred_at=occurred, expires_at=expires))
            for name in segments:
                if rng.random() < 0.3:
                    session.add(SegmentMembership(customer_id=customer.id, segment=name, entered_at=now))
        for customer in customers:
            _habits(session, rng, customer.id, now)
    return [c.id for c in customers]


def _ago(rng: random.Random) -> timedelta:
    if rng.random() < 0.4:
        return rng.choice(_WINDOW_EDGES)
    return timedelta(microseconds=rng.randrange(-3 * 86_400 * 10**6, 500 * 86_400 * 10**6))


def _habits(session: Any, rng: random.Random, customer_id: str, now: datetime) -> None:
    """Purchases with line items, texts, clicks (bots too) and replies, for windows and habits."""
    regular = rng.random() < 0.3  # a habit: every 7, 14 or 30 days, give or take a microsecond
    gap, start = rng.choice([7, 14, 30]), rng.choice([*_WINDOW_EDGES, timedelta(days=5), timedelta(days=40)])
    for n in range(rng.choice([0, 0, 1, 2, 3, 6])):
        event_id = f"{customer_id}:purchase:{n}"
        at = now - (start + timedelta(days=gap * n, microseconds=rng.choice([0, 0, 1, -1])) if regular else _ago(rng))
        session.add(Purchase(event_id=event_id, customer_id=customer_id, occurred_at=at,
                             total=rng.choice([0.0, 4.5, 12.25, 100.0, 250.75])))  # exact in binary: sums agree
        for line in range(rng.choice([0, 1, 2, 3])):
            session.add(PurchaseItem(event_id=event_id, line=line, customer_id=customer_id,
                                     product=rng.choice(_PRODUCTS), category=rng.choice([*_CATEGORIES, None]),
                                     occurred_at=at))
    for n in range(rng.choice([0, 1, 3, 5])):
        status = rng.choice(["sent", "delivered", "failed", "reserved", "undelivered"])
        sent = now - _ago(rng) if status != "reserved" else None
        key = f"{customer_id}:text:{n}"
        session.add(Message(id=key, key=key, customer_id=customer_id, status=status, created_at=now, sent_at=sent))
        if rng.random() < 0.6:
            code = f"{customer_id}{n}"
            session.add(Link(code=code, message_key=key, url="https://example.com", customer_id=customer_id,
                             created_at=now))
            session.flush()
            for _ in range(rng.choice([0, 1, 2])):
                bot = rng.choice([None, None, "head"])
                session.add(Click(link_code=code, event_id=None, bot=bot, clicked_at=now - _ago(rng)))
    for n in range(rng.choice([0, 0, 1, 2])):
        kind = rng.choice(["sms_replied", "sms_replied", "purchase"])
        session.add(Event(id=f"{customer_id}:{kind}:{n}", customer_id=customer_id, type=kind,
                          occurred_at=now - _ago(rng), received_at=now, properties={}))


@contextmanager
def runtime_contexts(db: Any, now: datetime = NOW) -> Iterator[dict[str, dict[str, Any]]]:
    """Each customer's expression context as the runtime builds it, plus ``average``
    (not in the runtime's context: computed here as the mean of the values present).
    Use them inside the ``with``: methods such as customer.orders_in() read the database."""
    catalog = Catalog(config_dir=Path("."))
    with session_scope(db, readonly=True) as session:
        customers = list(session.exec(select(Customer)).all())
        views = [customer_view(session, c, now) for c in customers]
        present = {f: [v[f] for v in views if v[f] is not None] for f in NUMBER_FIELDS}
        averages = {f: (sum(values) / len(values) if values else None) for f, values in present.items()}
        contexts = {}
        for customer in customers:
            context = expression_context(session, catalog, customer, now)
            context["average"] = build_context({"average": averages}, {})["average"]
            contexts[customer.id] = context
        yield contexts


def runtime_members(rule: str, contexts: dict[str, dict[str, Any]]) -> tuple[set[str], set[str]]:
    """(customers the runtime finds the rule true for, customers it fails on with an error)."""
    members, errors = set(), set()
    for customer_id, context in contexts.items():
        try:
            if is_true(rule, context):
                members.add(customer_id)
        except ExpressionError:  # e.g. 'abc' >= 3: the runtime cannot say
            errors.add(customer_id)
    return members, errors
