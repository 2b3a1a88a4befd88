"""A schedule's page of customers entered together (Starter.enter_many): one admission
transaction for the page, the marks of starts confirmed together in one statement, and
each customer's outcome what entering them one by one gives."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlmodel import select

from core.journeys import enrollment
from core.journeys.controls import apply_control
from store.db import session_scope
from store.tables import Enrollment
from tests.runtime.support import write_journeys

FLASH = """
id: flash
name: Flash
trigger: {schedule: {cron: "0 10 * * 5", segment: vip}}
audience: "customer.first_name != 'Out'"
reentry: always
steps:
  - wait: 1d
"""


class AdmissionStatements:
    """The statements of admission's shapes (the runs entered do their own work meanwhile)."""

    SHAPES = {"controls": "FROM journey_controls", "customers": "FROM customers \nWHERE customers.id IN",
              "runs": "enrollments.customer_id IN", "insert": "INSERT INTO enrollments",
              "mark": "UPDATE enrollments SET started_at"}

    def __init__(self, db: Any) -> None:
        self.seen: Counter[str] = Counter()
        sa_event.listen(db, "before_cursor_execute", self._execute)

    def _execute(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.seen.update(name for name, shape in self.SHAPES.items() if shape in statement)


def hold_marks(monkeypatch: pytest.MonkeyPatch, seconds: float = 0.3) -> None:
    """Each group of marks takes ``seconds``: the starts confirmed meanwhile wait for the next
    group, so the grouping shows on any machine, however fast its starts or its database."""
    mark_started = enrollment.mark_started

    def held(*args: Any) -> None:
        time.sleep(seconds)
        mark_started(*args)

    monkeypatch.setattr(enrollment, "mark_started", held)


async def test_a_page_is_admitted_in_one_transaction_with_each_outcome_its_own(journeys_dir: Path, simulation,
                                                                                monkeypatch) -> None:
    catalog = write_journeys(journeys_dir, {"flash": FLASH})
    async with simulation(catalog) as run:
        pinned = catalog.journey("flash")
        starter, at = run.sim.router.starter, run.sim.clock
        for n in range(20):
            await run.customer(id=f"p{n:02d}")
        await run.customer(id="out", first_name="Out")
        seen = AdmissionStatements(run.sim.db)
        hold_marks(monkeypatch)
        page = [(f"p{n:02d}", "flash:first") for n in range(20)]
        entries = await starter.enter_many(pinned, page, at=at)
        assert all(entry.started for entry in entries)
        marks = seen.seen.pop("mark")
        assert seen.seen == {"controls": 1, "customers": 1, "runs": 1, "insert": 1}
        assert 1 <= marks < 20  # each start marked as confirmed, those confirmed together at once
        with session_scope(run.sim.db, readonly=True) as session:
            rows = session.exec(select(Enrollment).where(Enrollment.journey_id == "flash")).all()
        assert len(rows) == 20 and all(row.started_at is not None for row in rows)

        # The next occasion: a run already there (kept; the reentry rule is "always", the
        # workflow id is one per customer), the same occasion twice, a refusal by the
        # audience, a customer with no profile yet (made and entered one by one).
        again = [("p00", "flash:first"), ("out", "flash:second"), ("fresh", "flash:second"),
                 ("p01", "flash:second"), ("fresh", "flash:second")]
        entries = await starter.enter_many(pinned, again, at=at + timedelta(minutes=1))
        assert [entry.reason for entry in entries[:2]] == ["occasion already entered", "not in audience"]
        assert entries[3].reason == "already in this journey"
        fresh = sorted([(entries[2].started, entries[2].reason), (entries[4].started, entries[4].reason)])
        assert fresh == [(False, "occasion already entered"), (True, "")]  # once, whichever came first

        # A paused journey admits nobody, in one statement's check.
        await apply_control(run.sim.db, run.sim.env.client, "flash", "pause", by="test")
        entries = await starter.enter_many(pinned, [("p05", "flash:third"), ("p06", "flash:third")],
                                           at=at + timedelta(minutes=2))
        assert [entry.reason for entry in entries] == ["journey paused"] * 2


async def test_concurrent_starts_are_marked_started_together(journeys_dir: Path, simulation, monkeypatch) -> None:
    catalog = write_journeys(journeys_dir, {"flash": FLASH})
    async with simulation(catalog) as run:
        pinned = catalog.journey("flash")
        starter = run.sim.router.starter
        for n in range(20):
            await run.customer(id=f"s{n:02d}")
        seen = AdmissionStatements(run.sim.db)
        hold_marks(monkeypatch)
        started = await asyncio.gather(*(starter.start(pinned, f"s{n:02d}", occasion="flash:together",
                                                       check_trigger=False, at=run.sim.clock) for n in range(20)))
        assert all(started)
        assert 1 <= seen.seen["mark"] < 20  # the marks of starts that finished together share a statement
        with session_scope(run.sim.db, readonly=True) as session:
            rows = session.exec(select(Enrollment).where(Enrollment.journey_id == "flash")).all()
        assert len(rows) == 20 and all(row.started_at is not None for row in rows)
