"""A paused journey holds its emails as it holds its texts: deferred while paused, sent
once after the resume (the real workflow, the test server, both databases)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from core.journeys.controls import apply_control
from processes.simulate import Simulation
from store.db import session_scope
from store.tables import Email
from tests.runtime.support import Run, write_journeys

START = datetime(2026, 3, 2, 15, tzinfo=UTC)  # a Monday afternoon
LATER_EMAIL = """
id: news
name: News by email
trigger: {manual: true}
steps:
  - wait: 1d
  - id: news_email
    send_email: {subject: "News", text: "Our news"}
"""


def _emails(db) -> list[Email]:  # type: ignore[no-untyped-def]
    with session_scope(db, readonly=True) as session:
        return list(session.exec(select(Email)).all())


async def test_a_paused_journey_holds_its_email_until_resumed(journeys_dir: Path, env, db, sender) -> None:
    catalog = write_journeys(journeys_dir, {"news": LATER_EMAIL})
    async with Simulation(env, catalog, db, start=START, sender=sender) as sim:
        run = Run(sim)
        await run.customer(email="ada@example.com")
        assert await run.enter("news")
        await apply_control(db, env.client, "news", "pause", by="test")
        # Half-way between two hourly re-checks of the hold: the time-skipping server cannot
        # take a timer's cancel in the task where it fired (temporalio/sdk-java#2606).
        await run.advance(timedelta(days=1, hours=1, minutes=30))
        limit, hang = time.process_time() + 40, time.monotonic() + 300  # CPU bound, and a guard against a hang
        while not (rows := _emails(db)) or rows[0].status != "deferred":
            assert time.process_time() < limit and time.monotonic() < hang, "the email was never held"
            await asyncio.sleep(0.05)
        assert rows[0].reason == "journey_paused"
        await apply_control(db, env.client, "news", "resume", by="test")
        while not (ended := run.enrollments("news")[0]).ended_at:  # the run ends with the email: no time to skip
            assert time.process_time() < limit and time.monotonic() < hang, "the run never ended after the resume"
            await asyncio.sleep(0.05)
        assert ended.outcome == "completed"
        timeline = await run.timeline("news")
    assert [row.status for row in _emails(db)] == ["sent"]
    assert [e["status"] for e in timeline["timeline"] if e["action"] == "email"] == ["sent"]
