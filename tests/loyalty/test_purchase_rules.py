"""The rules a purchase sets off (core/loyalty/rules.py), through the one event path,
on SQLite and PostgreSQL: earning, idempotency, tiers up, punch card, referral, coupons."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from core.loyalty.ledger import ensure_referral_code
from core.loyalty.rules import purchase_points
from language.config import Loyalty
from store.db import session_scope
from store.tables import Coupon
from tests.loyalty.support import (
    T0,
    customer,
    events,
    ledger,
    loyalty_catalog,
    make_customer,
    purchase,
    router_for,
)


@pytest.fixture
def router(journeys_dir: Path, db):  # type: ignore[no-untyped-def]
    return router_for(loyalty_catalog(journeys_dir), db)


# --- earning ------------------------------------------------------------------------------


@pytest.mark.parametrize(("per_unit", "amount", "expected"), [
    (1, 120, 120),
    (1, 19.99, 19),  # whole points, rounded down
    (1, "30.5", 30),  # amounts may come as strings
    (100, 0.29, 29),  # decimal arithmetic: 0.29 x 100 is 29, not 28.999...
    (1.5, 19.99, 29),  # 29.985
    (0.1, 5, 0),
    (1, -40, 0),  # a refund sent as a purchase earns nothing (and takes nothing)
])
def test_points_are_amount_times_rate_rounded_down(per_unit: float, amount: object, expected: int) -> None:
    rules = Loyalty.model_validate({"points": {"per_currency_unit": per_unit}})
    assert purchase_points(rules, float(amount)) == expected  # type: ignore[arg-type]


async def test_a_purchase_earns_points_that_expire_after_expire_after(router, db) -> None:
    await purchase(router, "c1", 19.99, T0)
    [entry] = ledger(db, "c1")
    assert (entry.points, entry.reason, entry.source) == (19, "purchase", "purchase")
    assert entry.occurred_at == T0 and entry.expires_at == T0 + timedelta(days=365)
    row = customer(db, "c1")
    assert row.points == 19 and row.orders_count == 1 and row.total_spent == 19.99


async def test_fractional_rate_from_loyalty_yaml(journeys_dir: Path, db) -> None:
    catalog = loyalty_catalog(journeys_dir, loyalty="points: {per_currency_unit: 1.5}\n")
    router = router_for(catalog, db)
    await purchase(router, "c1", "19.99", T0)
    await purchase(router, "c1", 0.5, T0 + timedelta(hours=1))  # 0.75: nothing, and no empty entry
    assert [e.points for e in ledger(db, "c1")] == [29]
    assert ledger(db, "c1")[0].expires_at is None  # no expire_after: points never lapse
    assert customer(db, "c1").tier is None  # no tiers configured


async def test_the_same_purchase_twice_earns_once(router, db) -> None:
    first = await purchase(router, "c1", 80, T0, event_id="order-1")
    again = await purchase(router, "c1", 80, T0, event_id="order-1")
    assert not first.duplicate and again.duplicate
    assert [e.points for e in ledger(db, "c1")] == [80]
    row = customer(db, "c1")
    assert row.points == 80 and row.orders_count == 1


async def test_a_late_purchase_does_not_roll_the_cached_balance_back(router, db) -> None:
    """A purchase that arrives after newer ones (an offline order synced late) adds its
    points without hiding the newer ones from the cached balance and tier."""
    await purchase(router, "c1", 600, T0 + timedelta(days=10), event_id="o1")
    result = await purchase(router, "c1", 10, T0, event_id="o2")
    row = customer(db, "c1")
    assert (row.points, row.tier) == (610, "gold") and result.follow_ups == []


# --- tiers up -------------------------------------------------------------------------------


async def test_tiers_go_up_at_the_purchase_that_earns_them(router, db) -> None:
    first = await purchase(router, "c1", 100, T0, event_id="o1")
    assert first.follow_ups == ["tier_changed"]  # a first tier is a change too: from none
    await purchase(router, "c1", 399, T0 + timedelta(days=1), event_id="o2")  # 499: still silver
    gold = await purchase(router, "c1", 1, T0 + timedelta(days=2), event_id="o3")  # 500: gold
    assert gold.follow_ups == ["tier_changed"]
    await purchase(router, "c1", 1500, T0 + timedelta(days=3), event_id="o4")  # 2000: platinum
    changes = events(db, "tier_changed", "c1")
    assert [(e.id, e.properties) for e in changes] == [
        ("o1:tier", {"from": None, "to": "silver", "direction": "up"}),
        ("o3:tier", {"from": "silver", "to": "gold", "direction": "up"}),
        ("o4:tier", {"from": "gold", "to": "platinum", "direction": "up"}),
    ]
    assert changes[1].occurred_at == T0 + timedelta(days=2)
    assert customer(db, "c1").tier == "platinum"


async def test_tiers_follow_points_earned_in_the_last_12_months(router, db) -> None:
    """A purchase a year and a day after a big one finds the old points out of the window."""
    await purchase(router, "c1", 600, T0, event_id="o1")
    assert customer(db, "c1").tier == "gold"
    await purchase(router, "c1", 10, T0 + timedelta(days=366), event_id="o2")
    assert customer(db, "c1").tier == "silver"
    [_, down] = events(db, "tier_changed", "c1")
    assert down.properties == {"from": "gold", "to": "silver", "direction": "down"}


async def test_a_maximal_event_id_still_gets_its_tier_change(router, db) -> None:
    """Event ids may be 128 characters: the follow-up's id must still fit."""
    long_id = "x" * 128
    await purchase(router, "c1", 600, T0, event_id=long_id)
    [change] = events(db, "tier_changed", "c1")
    assert len(change.id) <= 128 and change.id.endswith(":tier")


# --- punch card -------------------------------------------------------------------------------


async def test_punch_card_rewards_every_5th_purchase_once(router, db) -> None:
    for n in range(1, 12):
        await purchase(router, "c1", 1, T0 + timedelta(days=n), event_id=f"o{n}")
        if n == 5:  # the same 5th purchase again: no second reward
            await purchase(router, "c1", 1, T0 + timedelta(days=n), event_id=f"o{n}")
    rewards = [e for e in ledger(db, "c1") if e.source == "punch_card"]
    assert [(e.key, e.points, e.reason) for e in rewards] == [
        ("punch-card:c1:5", 100, "punch card: purchase #5"),
        ("punch-card:c1:10", 100, "punch card: purchase #10"),
    ]
    assert rewards[0].occurred_at == T0 + timedelta(days=5)
    assert rewards[0].expires_at == T0 + timedelta(days=5 + 365)
    assert customer(db, "c1").points == 11 + 200


# --- referral -----------------------------------------------------------------------------------


async def test_referral_rewards_both_sides_once_on_the_first_purchase(router, db) -> None:
    make_customer(db, "ref")
    code = ensure_referral_code(db, "ref")
    assert len(code) == 8 and code == ensure_referral_code(db, "ref")  # made once, kept
    assert not set(code) & set("01OIL")
    result = await purchase(router, "new", 50, T0, event_id="o1", referral_code=f" {code.lower()} ")
    assert set(result.follow_ups) == {"tier_changed", "referral_converted"}
    assert sorted((e.key, e.points) for e in ledger(db, "new")) == [("purchase:o1", 50),
                                                                    ("referral:new:referee", 100)]
    assert [(e.key, e.points, e.source) for e in ledger(db, "ref")] == [("referral:new:referrer", 200, "referral")]
    [converted] = events(db, "referral_converted")
    assert converted.id == "referral:new:converted" and converted.customer_id == "ref"
    assert converted.properties == {"referee_id": "new", "referral_code": code, "points": 200,
                                    "referee_points": 100, "purchase_event_id": "o1"}
    # The referrer's cached balance and tier follow (their first tier: a change, too).
    assert (customer(db, "ref").points, customer(db, "ref").tier) == (200, "silver")
    assert [e.properties["to"] for e in events(db, "tier_changed", "ref")] == ["silver"]
    # Later purchases with the code, or the first one again, reward no one again.
    await purchase(router, "new", 50, T0 + timedelta(days=1), event_id="o2", referral_code=code)
    await purchase(router, "new", 50, T0, event_id="o1", referral_code=code)
    assert customer(db, "ref").points == 200 and len(events(db, "referral_converted")) == 1
    assert customer(db, "new").points == 50 + 100 + 50


async def test_referral_through_the_referred_by_attribute(router, db) -> None:
    make_customer(db, "ref")
    code = ensure_referral_code(db, "ref")
    make_customer(db, "new", attributes={"referred_by": code})
    await purchase(router, "new", 10, T0, event_id="o1")
    assert customer(db, "ref").points == 200 and customer(db, "new").points == 110
    assert len(events(db, "referral_converted", "ref")) == 1


async def test_self_referral_is_refused(router, db) -> None:
    make_customer(db, "me", phone="+12015550123")
    code = ensure_referral_code(db, "me")
    await purchase(router, "me", 10, T0, event_id="o1", referral_code=code)
    make_customer(db, "me-again", phone="+12015550123")  # the same person under a second id
    await purchase(router, "me-again", 10, T0, event_id="o2", referral_code=code)
    assert [e.key for e in ledger(db, "me")] == ["purchase:o1"]
    assert [e.key for e in ledger(db, "me-again")] == ["purchase:o2"]
    assert events(db, "referral_converted") == []


async def test_no_referral_after_the_first_purchase_or_with_an_unknown_code(router, db) -> None:
    make_customer(db, "ref")
    code = ensure_referral_code(db, "ref")
    await purchase(router, "late", 10, T0, event_id="o1")
    await purchase(router, "late", 10, T0 + timedelta(days=1), event_id="o2", referral_code=code)
    await purchase(router, "typo", 10, T0, event_id="o3", referral_code="NOSUCHCD")
    assert ledger(db, "ref") == [] and events(db, "referral_converted") == []
    assert customer(db, "late").points == 20 and customer(db, "typo").points == 10


async def test_no_referral_program_no_referral(journeys_dir: Path, db) -> None:
    router = router_for(loyalty_catalog(journeys_dir, loyalty="points: {per_currency_unit: 1}\n"), db)
    make_customer(db, "ref")
    code = ensure_referral_code(db, "ref")
    await purchase(router, "new", 10, T0, event_id="o1", referral_code=code)
    assert ledger(db, "ref") == [] and events(db, "referral_converted") == []


# --- coupons ---------------------------------------------------------------------------------------


def _issue(db, code: str, customer_id: str, *, expires_in: timedelta | None = timedelta(days=14)) -> None:  # type: ignore[no-untyped-def]
    with session_scope(db) as session:
        session.add(Coupon(code=code, series="WINBACK20", key=f"issue:{code}", customer_id=customer_id,
                           issued_at=T0 - timedelta(days=1),
                           expires_at=T0 - timedelta(days=1) + expires_in if expires_in else None))


def _coupon(db, code: str) -> Coupon:  # type: ignore[no-untyped-def]
    with session_scope(db) as session:
        found = session.get(Coupon, code)
        assert found is not None
        return found


async def test_a_coupon_is_redeemed_once_by_the_purchase_that_carries_it(router, db) -> None:
    _issue(db, "WB7K2M9PQR", "c1")
    await purchase(router, "c1", 80, T0, event_id="o1", coupon_code="wb7k2m9pqr")  # any case
    await purchase(router, "c1", 80, T0 + timedelta(days=1), event_id="o2", coupon_code="WB7K2M9PQR")
    coupon = _coupon(db, "WB7K2M9PQR")
    assert coupon.redeemed_at == T0 and coupon.redeemed_event_id == "o1"
    assert customer(db, "c1").orders_count == 2  # both purchases count, whatever the coupon


async def test_unknown_expired_or_someone_elses_coupons_are_not_redeemed(router, db) -> None:
    _issue(db, "WBEXPIRED1", "c1", expires_in=timedelta(hours=12))  # expired before T0
    _issue(db, "WBOTHERS01", "someone-else")
    _issue(db, "WBFOREVER1", "c1", expires_in=None)
    await purchase(router, "c1", 10, T0, event_id="o1", coupon_code="WBEXPIRED1")
    await purchase(router, "c1", 10, T0, event_id="o2", coupon_code="WBOTHERS01")
    await purchase(router, "c1", 10, T0, event_id="o3", coupon_code="NOPE")
    await purchase(router, "c1", 10, T0, event_id="o4", coupon_code=42)  # not even a string
    assert _coupon(db, "WBEXPIRED1").redeemed_at is None
    assert _coupon(db, "WBOTHERS01").redeemed_at is None
    assert customer(db, "c1").orders_count == 4 and customer(db, "c1").points == 40
    await purchase(router, "c1", 10, T0 + timedelta(days=400), event_id="o5", coupon_code="WBFOREVER1")
    assert _coupon(db, "WBFOREVER1").redeemed_event_id == "o5"  # no expiry: redeemable any time
