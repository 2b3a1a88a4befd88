"""The daily job's events as the shipped journeys read them: points_expiring starts
points_expiry, whose text shows the points' expiry date."""

from __future__ import annotations

from core.loyalty.maintenance import run_daily
from tests.journeys.support import around, shipped, sms, utc

START = utc(2027, 2, 16, 8)  # 03:00 in New York: the loyalty-daily schedule's hour


async def test_the_daily_job_reminds_through_the_shipped_points_expiry_journey(simulation) -> None:
    async with simulation(shipped(), start=START) as run:
        # 150 points earned 2026-03-02 08:00 UTC: they lapse 2027-03-02 03:00 in New York.
        await run.customer(orders=[{"at": "-351d", "amount": 150}])
        result = await run_daily(run.sim.router, START)
        assert result.reminders == 1
        timeline = await run.timeline("points_expiry")
    [reminder] = sms(timeline)
    assert reminder["status"] == "sent" and reminder["at"] == around("2027-02-16T16:00:00Z")  # 11:00 local
    assert "some of your 150 points expire on Mar 02, 2027." in reminder["text"]
