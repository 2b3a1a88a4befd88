"""The daily loyalty job (core/loyalty/maintenance.py) at explicit moments, on SQLite
and PostgreSQL: expiry, tier downgrades, points_expiring reminders (when, and once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.loyalty import ledger as loyalty
from core.loyalty.maintenance import run_daily
from store.db import session_scope
from tests.loyalty.support import (
    T0,
    balance,
    customer,
    events,
    loyalty_catalog,
    make_customer,
    purchase,
    router_for,
)

NEW_YORK = ZoneInfo("America/New_York")


def local(*args: int, zone: ZoneInfo = NEW_YORK) -> datetime:
    return datetime(*args, tzinfo=zone).astimezone(UTC)  # type: ignore[misc]


@pytest.fixture
def router(journeys_dir: Path, db):  # type: ignore[no-untyped-def]
    return router_for(loyalty_catalog(journeys_dir), db)


async def test_points_expire_at_their_moment_and_the_job_refreshes_the_balance(router, db) -> None:
    await purchase(router, "c1", 100, T0, event_id="o1")
    await purchase(router, "c1", 30, T0 + timedelta(days=100), event_id="o2")
    lapse = T0 + timedelta(days=365)
    assert balance(db, "c1", lapse - timedelta(seconds=1)) == 130
    assert balance(db, "c1", lapse) == 30  # read fresh, the balance drops at the very moment
    first = await run_daily(router, lapse - timedelta(minutes=1))
    assert (first.customers, first.refreshed) == (1, 0)
    assert customer(db, "c1").points == 130
    after = await run_daily(router, lapse + timedelta(hours=1))
    assert (after.refreshed, after.tier_changes) == (1, 0)  # silver either way
    assert customer(db, "c1").points == 30
    assert (await run_daily(router, lapse + timedelta(hours=2))).refreshed == 0  # nothing stale any more


async def test_tiers_go_down_through_the_daily_job_after_12_months(router, db) -> None:
    await purchase(router, "c1", 1500, T0, event_id="o1")
    await purchase(router, "c1", 600, T0 + timedelta(days=200), event_id="o2")
    assert customer(db, "c1").tier == "platinum"
    assert (await run_daily(router, T0 + timedelta(days=364))).tier_changes == 0
    moment = T0 + timedelta(days=365, hours=1)
    result = await run_daily(router, moment)
    assert (result.refreshed, result.tier_changes) == (1, 1)
    row = customer(db, "c1")
    assert (row.tier, row.points) == ("gold", 600)
    down = events(db, "tier_changed", "c1")[-1]
    assert down.properties == {"from": "platinum", "to": "gold", "direction": "down"}
    assert down.occurred_at == moment and down.id == f"loyalty:tier:c1:{moment.isoformat()}"
    # Again the same day, or the next: nothing new.
    await run_daily(router, moment + timedelta(hours=5))
    await run_daily(router, moment + timedelta(days=1))
    assert [e.properties["to"] for e in events(db, "tier_changed", "c1")] == ["gold", "platinum", "gold"]
    # And down again once the second purchase leaves the window too.
    await run_daily(router, T0 + timedelta(days=565, hours=1))
    assert [e.properties["to"] for e in events(db, "tier_changed", "c1")] == ["gold", "platinum", "gold", "silver"]


async def test_the_reminder_comes_once_on_the_day_expiry_reminder_before(router, db) -> None:
    """Points lapsing 2027-03-02 10:00 New York time, 14 days' notice: the first run on
    2027-02-16 (local date) emits points_expiring; earlier runs and later ones do not."""
    await purchase(router, "c1", 150, T0, event_id="o1")  # 2026-03-02 15:00 UTC
    expiry = T0 + timedelta(days=365)
    assert (await run_daily(router, local(2027, 2, 15, 23, 59))).reminders == 0
    assert events(db, "points_expiring") == []
    assert (await run_daily(router, local(2027, 2, 16, 0, 1))).reminders == 1
    for moment in (local(2027, 2, 16, 3), local(2027, 2, 17, 3), local(2027, 3, 1, 3), local(2027, 3, 2, 3)):
        assert (await run_daily(router, moment)).reminders == 0
    [reminder] = events(db, "points_expiring", "c1")
    assert reminder.id == "points-expiring:c1:2027-03-02"
    assert reminder.occurred_at == local(2027, 2, 16, 0, 1)
    assert reminder.properties == {"points": 150, "expires_at": "2027-03-02T10:00:00-05:00",
                                   "expires_on": "2027-03-02", "balance": 150}
    # What the shipped points_expiry journey prints with `| date`.
    assert datetime.fromisoformat(reminder.properties["expires_at"]).strftime("%b %d, %Y") == "Mar 02, 2027"
    assert datetime.fromisoformat(reminder.properties["expires_at"]) == expiry
    # After the expiry: nothing to remind, and the balance is gone.
    assert (await run_daily(router, local(2027, 3, 3, 3))).reminders == 0
    assert customer(db, "c1").points == 0


async def test_one_reminder_per_expiry_date_in_the_customer_time_zone(router, db) -> None:
    make_customer(db, "tokyo", timezone="Asia/Tokyo")
    # 2026-03-02 14:00 and 16:00 UTC are 23:00 on the 2nd and 01:00 on the 3rd in Tokyo.
    await purchase(router, "tokyo", 10, datetime(2026, 3, 2, 14, tzinfo=UTC), event_id="a")
    await purchase(router, "tokyo", 20, datetime(2026, 3, 2, 16, tzinfo=UTC), event_id="b")
    await purchase(router, "tokyo", 40, datetime(2026, 3, 2, 17, tzinfo=UTC), event_id="c")
    # 2027-02-17 00:30 in Tokyo: both local dates (03-02 and 03-03) are within 14 days.
    result = await run_daily(router, local(2027, 2, 17, 0, 30, zone=ZoneInfo("Asia/Tokyo")))
    assert result.reminders == 2
    reminders = {e.properties["expires_on"]: e.properties for e in events(db, "points_expiring", "tokyo")}
    assert reminders["2027-03-02"]["points"] == 10
    assert reminders["2027-03-03"]["points"] == 60
    assert reminders["2027-03-03"]["expires_at"] == "2027-03-03T01:00:00+09:00"  # the first of that day


async def test_reminders_do_not_promise_points_a_deduction_took(router, db) -> None:
    await purchase(router, "c1", 300, T0, event_id="o1")
    await purchase(router, "c1", 100, T0 + timedelta(days=1), event_id="o2")
    with session_scope(db) as session:  # a journey's negative award_points, without expiry
        row = session.get(type(customer(db, "c1")), "c1")
        loyalty.award(session, row, key="deduction", points=-350, reason="adjustment", at=T0 + timedelta(days=2),
                      expires_at=None, source="journey:fix")
    await run_daily(router, T0 + timedelta(days=360))
    reminders = [e.properties for e in events(db, "points_expiring", "c1")]
    assert [(r["expires_on"], r["points"], r["balance"]) for r in reminders] == [("2027-03-02", 50, 50)]


async def test_no_reminders_without_expiry_reminder(journeys_dir: Path, db) -> None:
    router = router_for(loyalty_catalog(journeys_dir, loyalty="points: {per_currency_unit: 1, expire_after: 30d}\n"),
                        db)
    await purchase(router, "c1", 100, T0, event_id="o1")
    result = await run_daily(router, T0 + timedelta(days=29))
    assert result.reminders == 0 and events(db, "points_expiring") == []


async def test_the_job_works_through_every_page(router, db) -> None:
    for n in range(5):
        await purchase(router, f"c{n}", 600, T0, event_id=f"o{n}")
    result = await run_daily(router, T0 + timedelta(days=366), page_size=2)
    assert (result.customers, result.refreshed, result.tier_changes) == (5, 5, 5)
    assert {customer(db, f"c{n}").tier for n in range(5)} == {"silver"}
