"""Time-based journeys on the real dev server: schedules created from the YAML, a
firing entering exactly the due customers, and no one entered twice for one occasion."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import select

from core.journeys.schedules import journey_schedules, sync_schedules
from processes.temporal import connect_to
from processes.workers import build_workers
from store.db import open_database, session_scope
from store.migrate import upgrade
from store.tables import Customer, Enrollment, SegmentMembership
from tests.runtime.support import CountingSender, write_journeys
from workflows.fanout import FANOUT_WORKFLOW, FanoutInput, FanoutResult

BROADCAST = """
id: flash
name: Flash sale
trigger: {schedule: {cron: "0 10 * * 5", segment: vip, timezone: customer}}
reentry: always
steps: [{exit: done}]
"""
BIRTHDAY = """
id: bday
name: Birthday
trigger: {date: {attribute: birthday, at: "10:00"}}
reentry: 300d
steps: [{exit: done}]
"""


async def test_a_firing_enters_the_due_customers_once_per_occasion(tmp_path: Path, dev_address: str) -> None:
    catalog = write_journeys(tmp_path / "journeys", {"flash": BROADCAST, "bday": BIRTHDAY})
    db = open_database(f"sqlite:///{tmp_path / 'j.db'}")
    upgrade(db)
    moment = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)  # Friday, 10:00 in Stockholm
    with session_scope(db) as session:
        for i in range(120):
            zone = "Europe/Stockholm" if i % 3 else "America/New_York"
            session.add(Customer(id=f"c{i:03d}", timezone=zone, created_at=moment, updated_at=moment))
        session.flush()
        for i in range(120):
            session.add(SegmentMembership(customer_id=f"c{i:03d}", segment="vip", entered_at=moment))
    client = await connect_to(dev_address)
    done = await sync_schedules(client, catalog, [journey_schedules])
    assert done == {"journey-schedule/flash": "created", "journey-schedule/bday": "created"}
    description = await client.get_schedule_handle("journey-schedule/flash").describe()
    # Each customer's 10:00: the firing runs every quarter hour (zones differ by quarters).
    upcoming = description.info.next_action_times
    assert upcoming and {t.minute for t in upcoming} <= {0, 15, 30, 45}
    # A second sync (a worker restart) keeps a pause and creates nothing new.
    await client.get_schedule_handle("journey-schedule/flash").pause()
    assert (await sync_schedules(client, catalog, [journey_schedules]))["journey-schedule/flash"] == "updated"
    assert (await client.get_schedule_handle("journey-schedule/flash").describe()).schedule.state.paused

    workers = build_workers(client, catalog, db, CountingSender())
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        fire = FanoutInput(journey_id="flash", moment=moment, per_second=0, page_size=25)
        first = await client.execute_workflow(FANOUT_WORKFLOW, fire, id="fanout-test-1", task_queue="journeys",
                                              result_type=FanoutResult)
        assert first.started == 80  # the Stockholm two thirds; New York's 10:00 is later
        # The same occasion again (a retry, a restart, a catch-up): nobody twice.
        again = await client.execute_workflow(FANOUT_WORKFLOW, fire, id="fanout-test-2", task_queue="journeys",
                                              result_type=FanoutResult)
        assert again.started == 0

        async def all_done() -> list[Enrollment]:
            while True:
                with session_scope(db) as session:
                    runs = list(session.exec(select(Enrollment).where(Enrollment.journey_id == "flash")).all())
                if all(run.status == "ended" for run in runs):
                    return runs
                await asyncio.sleep(0.2)

        runs = await asyncio.wait_for(all_done(), 60)
        assert len(runs) == 80 and {run.occasion for run in runs} == {"flash:schedule:2026-03-06T10:00"}
        assert {run.outcome for run in runs} == {"done"}
    finally:
        for worker in workers:
            await worker.shutdown()
        for task in tasks:
            await task
        for schedule_id in ("journey-schedule/flash", "journey-schedule/bday"):
            await client.get_schedule_handle(schedule_id).delete()
        db.dispose()
