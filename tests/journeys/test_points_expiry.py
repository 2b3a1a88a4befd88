"""points_expiry, as shipped: on points_expiring (14 days before points lapse), wait for
11:00 in the customer's time zone, then a reminder with the balance and the expiry date.

The loyalty engine's event carries `expires_at` (the journey formats it with `date`);
the nightly batch sends it at any hour, so these runs start at 07:00 UTC (02:00 in New
York) on Monday 2026-03-02 unless a test says otherwise."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.journeys.support import after, around, link_target, shipped, short_link, sms, utc

NIGHT = utc(2026, 3, 2, 7, 0)
EXPIRING = 'points_expiring {"points": 150, "expires_at": "2026-03-16"}'


async def test_reminder_at_1100_local_with_balance_and_date(simulation) -> None:
    """Event at 02:00 in New York: the reminder waits for 11:00 there (16:00 UTC) and shows
    the whole balance (1,250, with a thousands separator) and the date (Mar 16, 2026)."""
    async with simulation(shipped(), start=NIGHT) as run:
        await run.customer(points=1250)
        assert await run.enter("points_expiry", trigger=EXPIRING)
        timeline = await run.timeline("points_expiry")
        link = short_link(run, "reminder")
        target = link_target(run, sms(timeline)[0]["text"])
    [reminder] = sms(timeline)
    assert reminder["step"] == "reminder" and reminder["status"] == "sent"
    assert reminder["at"] == around("2026-03-02T16:00:00Z")
    assert reminder["text"] == ("Nordic Shoes: Hi Alex, some of your 1,250 points expire on Mar 16, 2026. "
                                f"Use them on your next order before they're gone: {link}")
    assert target == "https://nordicshoes.example/rewards"
    assert timeline["outcome"] == "completed"


@pytest.mark.parametrize(("timezone", "start", "expected"), [
    ("Europe/Stockholm", NIGHT, "2026-03-02T10:00:00Z"),  # 08:00 there: 11:00 the same day
    ("Europe/Stockholm", utc(2026, 3, 2, 15), "2026-03-03T10:00:00Z"),  # 16:00 there: 11:00 the next day
    ("America/Los_Angeles", utc(2026, 3, 2, 15), "2026-03-02T19:00:00Z"),  # 07:00 there: 11:00 PST
])
async def test_reminder_waits_for_1100_in_the_customer_time_zone(
        simulation, timezone: str, start: datetime, expected: str) -> None:
    """11:00 is the customer's own time, whenever the batch runs."""
    async with simulation(shipped(), start=start) as run:
        await run.customer(points=300, timezone=timezone)
        assert await run.enter("points_expiry", trigger='points_expiring {"expires_at": "2026-03-16T12:00:00Z"}')
        timeline = await run.timeline("points_expiry")
    [reminder] = sms(timeline)
    assert reminder["status"] == "sent" and reminder["at"] == around(expected)
    assert "some of your 300 points expire on Mar 16, 2026." in reminder["text"]


async def test_no_points_no_run(simulation) -> None:
    """Audience customer.points > 0: a customer with nothing left does not enter."""
    async with simulation(shipped(), start=NIGHT) as run:
        await run.customer(points=0)
        assert not await run.enter("points_expiry", trigger=EXPIRING)
        assert run.enrollments("points_expiry") == []


async def test_at_most_one_reminder_in_30_days(simulation) -> None:
    """Another points_expiring 10 days later starts nothing; one 31 days later does."""
    async with simulation(shipped(), start=NIGHT) as run:
        await run.customer(points=500)
        assert await run.enter("points_expiry", trigger=EXPIRING)
        await run.at('points_expiring@+10d {"expires_at": "2026-03-26"}')
        assert len(run.enrollments("points_expiry")) == 1
        await run.at('points_expiring@+31d {"expires_at": "2026-04-16"}')
        assert len(run.enrollments("points_expiry")) == 2


async def test_reminder_is_marketing_and_needs_consent(simulation) -> None:
    """Marketing by purpose: a customer who has not opted in gets nothing (no_consent at 11:00)."""
    async with simulation(shipped(), start=NIGHT) as run:
        await run.customer(points=1250, sms_consent="none")
        assert await run.enter("points_expiry", trigger=EXPIRING)
        timeline = await run.timeline("points_expiry")
    [reminder] = sms(timeline)
    assert reminder["status"] == "skipped" and reminder["reason"] == "no_consent"
    assert reminder["at"] == after(NIGHT, "9h")
