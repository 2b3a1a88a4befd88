"""The event sweeper: one long-lived workflow that routes events stored but never routed,
continuing as new instead of leaving a finished workflow behind every minute."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlmodel import select
from temporalio.api.enums.v1 import EventType

from core.event import EventIn
from store.db import session_scope
from store.tables import Event
from tests.runtime.support import temporal_unreachable, write_journeys
from workflows.contracts import JOURNEY_TASK_QUEUE
from workflows.outbox import SWEEPER_ID, EventSweeper, SweeperInput, SweepLoop

SIGNUP = """
id: short
name: Short
trigger: {event: signup}
steps:
  - wait: 1d
"""


async def test_the_sweeper_routes_what_was_stored_and_continues_as_new(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"short": SIGNUP})
    async with simulation(catalog) as run:
        await run.customer(id="b")
        router = run.sim.router
        with temporal_unreachable(router), pytest.raises(RuntimeError):
            await router.route(EventIn(id="signup-b", type="signup", customer_id="b", occurred_at=run.sim.clock))

        client = run.sim.env.client
        sweeper = SweeperInput(loop=SweepLoop(every_seconds=0.1, for_seconds=0.3, older_than_seconds=0),
                               rounds_per_run=2)
        handle = await client.start_workflow(EventSweeper.run, sweeper, id=SWEEPER_ID, task_queue=JOURNEY_TASK_QUEUE)
        first_run = handle.result_run_id

        def routed() -> bool:
            with session_scope(run.sim.db) as session:
                return session.exec(select(Event.routed_at).where(Event.id == "signup-b")).one() is not None

        async def continued() -> str:
            while True:
                description = await client.get_workflow_handle(SWEEPER_ID).describe()
                if description.run_id != first_run:
                    return description.status.name
                await asyncio.sleep(0.1)

        assert await asyncio.wait_for(continued(), timeout=30) == "RUNNING"  # one workflow, a new run
        assert routed() and len(run.enrollments("short", customer="b")) == 1
        history = await client.get_workflow_handle(SWEEPER_ID, run_id=first_run).fetch_history()
        assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        await client.get_workflow_handle(SWEEPER_ID).terminate("test over")
