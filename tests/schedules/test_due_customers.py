"""Who is due when a time-based journey fires: local times per customer, birthdays
(with offsets and 29 February), and the cron rules behind it. Both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from core.journeys.cron import Cron, CronError
from core.journeys.fanout import anniversary_dates, due_customers
from store.db import session_scope
from store.tables import Customer, SegmentMembership
from tests.runtime.support import write_journeys

BROADCAST = """
id: flash
name: Flash
trigger: {schedule: {cron: "0 10 * * 5", segment: vip, timezone: customer}}
steps: [{exit: done}]
"""
FIXED = """
id: fixed
name: Fixed zone broadcast
trigger: {schedule: {cron: "0 10 * * 5", segment: vip, timezone: Europe/Stockholm}}
steps: [{exit: done}]
"""
BIRTHDAY = """
id: bday
name: Birthday
trigger: {date: {attribute: birthday, at: "10:00"}}
steps: [{exit: done}]
"""
EVE = """
id: eve
name: The day before
trigger: {date: {attribute: attributes.anniversary, at: "09:30", offset: -1d}}
steps: [{exit: done}]
"""


def _customers(db, rows: list[tuple[str, str | None, date | None, dict]]) -> None:  # type: ignore[no-untyped-def]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with session_scope(db) as session:
        for customer_id, zone, birthday, attributes in rows:
            session.add(Customer(id=customer_id, timezone=zone, birthday=birthday, attributes=attributes,
                                 created_at=now, updated_at=now))
        session.flush()
        for customer_id, *_ in rows:
            session.add(SegmentMembership(customer_id=customer_id, segment="vip", entered_at=now))


def test_cron_parses_and_matches() -> None:
    friday_ten = datetime(2026, 3, 6, 10, 0)
    assert Cron.parse("0 10 * * 5").matches(friday_ten)
    assert not Cron.parse("0 10 * * 1-4").matches(friday_ten)
    assert Cron.parse("*/15 9-17 * * 1-7").matches(friday_ten)
    assert Cron.parse("0 10 * * 7").matches(datetime(2026, 3, 8, 10, 0))  # 7 is Sunday too
    assert Cron.parse("0 10 6 * 1").matches(friday_ten)  # day-of-month OR weekday when both set
    assert Cron.parse("0 10 * MAR Fri").matches(friday_ten) and Cron.parse("0 10 * * mon-fri").matches(friday_ten)
    assert Cron.parse("30 9 * * *").utc_minutes() == [0, 15, 30, 45]
    for bad in ("0 10 * *", "61 * * * *", "0 10 * 13 *", "x * * * *"):
        with pytest.raises(CronError):
            Cron.parse(bad)


def test_a_customer_time_broadcast_picks_customers_whose_local_time_it_is(tmp_path: Path, db) -> None:
    catalog = write_journeys(tmp_path / "j", {"flash": BROADCAST, "fixed": FIXED})
    _customers(db, [("ny", "America/New_York", None, {}), ("sto", "Europe/Stockholm", None, {}),
                    ("tyo", "Asia/Tokyo", None, {}), ("dflt", None, None, {})])  # default zone: New York
    flash = catalog.journey("flash").journey
    # Friday 6 March 2026, 09:00 UTC = 10:00 in Stockholm.
    due = due_customers(db, catalog, flash, datetime(2026, 3, 6, 9, 0, tzinfo=UTC))
    assert [(d.customer_id, d.occasion) for d in due] == [("sto", "schedule:2026-03-06T10:00")]
    # 15:00 UTC = 10:00 in New York: both New Yorkers, the one by default too.
    due = due_customers(db, catalog, flash, datetime(2026, 3, 6, 15, 0, tzinfo=UTC))
    assert [d.customer_id for d in due] == ["dflt", "ny"]
    assert due_customers(db, catalog, flash, datetime(2026, 3, 6, 16, 0, tzinfo=UTC)) == []
    # Paging: after "dflt", only "ny" is left.
    assert [d.customer_id for d in due_customers(db, catalog, flash, datetime(2026, 3, 6, 15, 0, tzinfo=UTC),
                                                 after="dflt")] == ["ny"]
    # A fixed zone: Temporal fires at 10:00 Stockholm time and everyone in the segment is due.
    fixed = due_customers(db, catalog, catalog.journey("fixed").journey, datetime(2026, 3, 6, 9, 0, tzinfo=UTC))
    assert len(fixed) == 4 and {d.occasion for d in fixed} == {"schedule:2026-03-06T10:00"}


def test_birthdays_at_local_time_with_offsets_and_leap_days(tmp_path: Path, db) -> None:
    catalog = write_journeys(tmp_path / "j", {"bday": BIRTHDAY, "eve": EVE})
    _customers(db, [
        ("ana", "Europe/Stockholm", date(1990, 3, 2), {"anniversary": "2020-03-03"}),
        ("bo", "America/New_York", date(1985, 3, 2), {}),
        ("leap", "Europe/Stockholm", date(2000, 2, 29), {}),
        ("none", "Europe/Stockholm", None, {}),
    ])
    bday = catalog.journey("bday").journey
    # 2 March 2026, 09:00 UTC = 10:00 in Stockholm: Ana's birthday there; Bo's comes at 15:00 UTC.
    assert [(d.customer_id, d.occasion) for d in due_customers(db, catalog, bday,
                                                                datetime(2026, 3, 2, 9, 0, tzinfo=UTC))] == [
        ("ana", "date:2026-03-02")]
    assert [d.customer_id for d in due_customers(db, catalog, bday, datetime(2026, 3, 2, 15, 0, tzinfo=UTC))] == [
        "bo"]
    # 2026 has no 29 February: the leap-day birthday is celebrated on the 28th.
    assert [d.customer_id for d in due_customers(db, catalog, bday, datetime(2026, 2, 28, 9, 0, tzinfo=UTC))] == [
        "leap"]
    # offset -1d on an attribute date: the day before Ana's anniversary (3 March), at 09:30.
    eve = catalog.journey("eve").journey
    assert [d.customer_id for d in due_customers(db, catalog, eve, datetime(2026, 3, 2, 8, 30, tzinfo=UTC))] == [
        "ana"]


def test_anniversary_dates() -> None:
    assert anniversary_dates(date(2026, 3, 2), timedelta(0)) == [date(2026, 3, 2)]
    assert anniversary_dates(date(2026, 3, 1), timedelta(days=-1)) == [date(2026, 3, 2)]
    assert anniversary_dates(date(2026, 2, 28), timedelta(0)) == [date(2026, 2, 28), date(2000, 2, 29)]
    assert anniversary_dates(date(2028, 2, 28), timedelta(0)) == [date(2028, 2, 28)]  # 2028 has its own 29th
