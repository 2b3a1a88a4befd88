"""The enrollments table and Temporal reconciled both ways, on the real dev server (the
time-skipping server has no visibility to list runs with)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from core.event import EventIn
from core.events.router import EventRouter
from core.journeys.reconcile import Repairs, reconcile
from processes.temporal import connect_to
from processes.workers import build_workers
from store.db import open_database, session_scope
from store.migrate import upgrade
from store.tables import Customer, Enrollment
from tests.runtime.support import CountingSender, write_journeys

LONG = """
id: long
name: Long
trigger: {event: signup}
reentry: always
steps:
  - wait: 30d
"""


async def _until(check, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.5)


async def test_reconcile_closes_runs_ended_outside_and_reopens_rows_of_running_runs(tmp_path: Path,
                                                                                   dev_address: str) -> None:
    catalog = write_journeys(tmp_path / "journeys", {"long": LONG})
    db = open_database(f"sqlite:///{tmp_path / 'j.db'}")
    upgrade(db)
    now = datetime.now(UTC)
    with session_scope(db) as session:
        for cid in ("terminated", "closed-by-mistake"):
            session.add(Customer(id=cid, created_at=now, updated_at=now))
    client = await connect_to(dev_address)
    router = EventRouter(catalog, db, client)
    since = now - timedelta(minutes=5)
    async with build_workers(client, catalog, db, CountingSender(), router=router)[0]:
        for cid in ("terminated", "closed-by-mistake"):
            routed = await router.route(EventIn(id=f"signup-{cid}", type="signup", customer_id=cid, occurred_at=now))
            assert routed.started == ["long"]
        await client.get_workflow_handle("journey/long/terminated").terminate("an operator")
        with session_scope(db) as session:  # what an older release's failed-start cleanup could leave
            wrong = session.exec(select(Enrollment).where(Enrollment.customer_id == "closed-by-mistake")).one()
            wrong.status, wrong.outcome = "ended", "lost"
            session.add(wrong)

        total = Repairs()

        async def repaired() -> bool:
            found = await reconcile(router.starter, since)
            total.runs_closed += found.runs_closed
            total.rows_reopened += found.rows_reopened
            return total.runs_closed >= 1 and total.rows_reopened >= 1

        assert await _until(repaired), total  # visibility lags the server by a moment
        with session_scope(db) as session:
            rows = {r.customer_id: r for r in session.exec(select(Enrollment)).all()}
        assert (rows["terminated"].status, rows["terminated"].outcome) == ("ended", "terminated")
        assert (rows["closed-by-mistake"].status, rows["closed-by-mistake"].outcome) == ("active", None)
        again = await reconcile(router.starter, since)
        assert (again.runs_closed, again.rows_reopened) == (0, 0)  # repaired once
        await client.get_workflow_handle("journey/long/closed-by-mistake").terminate("test over")
    db.dispose()
