"""The SegmentRefresh workflow on Temporal: on the time-skipping server, a customer whose
last purchase ages past 30 days is moved into lapsed_30d by a refresh, and the shipped
winback journey starts and sends its survey; on a dev server, the Temporal Schedule
starts the refresh."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from activities.deps import Deps
from activities.segments import SegmentActivities
from core.event import EventIn
from core.events.router import EventRouter
from core.events.store import EventStore
from core.segments import refresh as segments
from processes.simulate import CustomerSpec, Simulation
from store.db import session_scope
from store.tables import Enrollment, Event, SegmentMembership
from tests.e2e.conftest import dev_address, dev_server  # noqa: F401  (fixtures)
from tests.journeys.support import shipped
from tests.runtime.support import MONDAY_3PM
from tests.segments.test_refresh import catalog_with
from workflows.segment_refresh import RefreshReport, SegmentRefreshInput, SegmentRefreshWorkflow

QUEUE = "segments-test"


def lapsed(db: Any) -> set[str]:
    with session_scope(db, readonly=True) as session:
        return set(session.exec(select(SegmentMembership.customer_id)
                                .where(SegmentMembership.segment == "lapsed_30d")).all())


async def finished(client: Client, workflow_id: str, timeout: float = 60.0) -> RefreshReport:
    """The workflow's result, waited for without letting the time-skipping server skip
    time (a result() call would: the winback runs it starts wait 30 days)."""
    handle = client.get_workflow_handle(workflow_id, result_type=RefreshReport)
    deadline = asyncio.get_running_loop().time() + timeout
    while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        assert asyncio.get_running_loop().time() < deadline, "the refresh did not finish"
        await asyncio.sleep(0.1)
    return await handle.result()


async def eventually(check: Any, timeout: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := check()) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    return value


async def test_a_lapsing_customer_enters_lapsed_30d_and_winback_sends_its_survey(env, db, sender) -> None:
    catalog = shipped()
    async with Simulation(env, catalog, db, start=MONDAY_3PM, sender=sender) as sim:
        offset = sim.router.starter.clock_offset_seconds
        await sim.add_customer(CustomerSpec(id="ana", phone="+12015550123"))
        # Lapses too, but never opted in: winback's audience keeps her out.
        await sim.add_customer(CustomerSpec(id="bo", phone="+12015550124", sms_consent="none"))
        await sim.add_customer(CustomerSpec(id="cy", phone="+12015550125"))
        # Purchase history (CustomerSpec.orders would give every customer the same event ids).
        history = EventStore(catalog, db)
        for customer_id, days_ago in (("ana", 20), ("bo", 20), ("cy", 2)):
            history.store(EventIn(id=f"history:{customer_id}", type="purchase", customer_id=customer_id,
                                  occurred_at=MONDAY_3PM - timedelta(days=days_ago), properties={"amount": 50}),
                          "simulation")
        deps = Deps(catalog=catalog, db=db, sender=sender, router=sim.router)
        async with Worker(env.client, task_queue=QUEUE, workflows=[SegmentRefreshWorkflow],
                          activities=[SegmentActivities(deps).refresh]):

            async def refresh(name: str) -> RefreshReport:
                workflow_id = f"segments-refresh-{name}-{uuid.uuid4().hex[:6]}"
                await env.client.start_workflow(
                    SegmentRefreshWorkflow.run, SegmentRefreshInput(clock_offset_seconds=offset, simulated=True),
                    id=workflow_id, task_queue=QUEUE)
                return await finished(env.client, workflow_id)

            first = await refresh("day-0")
            assert lapsed(db) == set()  # 20 days: nobody lapsed yet
            assert first.started == 0 and sender.sent == []  # (first_time_buyers and the like start nothing)

            await sim.advance_to(MONDAY_3PM + timedelta(days=11))  # 31 days since their purchase
            second = await refresh("day-11")
            assert lapsed(db) == {"ana", "bo"}
            [lapsed_result] = [r for r in second.segments if r.segment == "lapsed_30d"]
            assert (lapsed_result.entered, lapsed_result.exited, lapsed_result.size) == (2, 0, 2)
            assert second.started == 1

            texts = await eventually(lambda: list(sender.sent))
            with session_scope(db, readonly=True) as session:
                entered = session.exec(select(Event).where(Event.type == "segment_entered",
                                                           Event.properties["segment"].as_string() == "lapsed_30d")
                                       ).all()
                runs = session.exec(select(Enrollment).where(Enrollment.journey_id == "winback")).all()
    assert sorted(e.customer_id for e in entered) == ["ana", "bo"]
    # The refresh's moment: the simulated clock (which also runs with real time, a little).
    assert all(abs(e.occurred_at - (MONDAY_3PM + timedelta(days=11))) < timedelta(minutes=1) for e in entered)
    assert [(r.customer_id, r.status) for r in runs] == [("ana", "active")]
    [survey] = texts
    assert survey.to == "+12015550123"
    assert survey.body.startswith("Nordic Shoes: Hi Alex, we miss you! What would bring you back?")


async def test_the_schedule_runs_the_refresh_on_a_dev_server(dev_address: str, db, tmp_path: Path) -> None:  # noqa: F811
    from processes.temporal import connect_to

    catalog = catalog_with(tmp_path / "journeys", "refresh: 1h\nsegments:\n  prospects: {rule: \"customer.orders_count == 0\"}\n")
    client = await connect_to(dev_address)
    with session_scope(db) as session:
        from store.tables import Customer

        session.add(Customer(id="p1", orders_count=0))
    router = EventRouter(catalog, db, client)
    deps = Deps(catalog=catalog, db=db, sender=None, router=router)  # type: ignore[arg-type]
    # The schedule's own task queue ("journeys"): a worker of this test only, on its own server.
    async with Worker(client, task_queue="journeys", workflows=[SegmentRefreshWorkflow],
                      activities=[SegmentActivities(deps).refresh]):
        schedule_id = await segments.ensure_refresh_schedule(client, catalog)
        assert schedule_id == "segments-refresh"
        handle = client.get_schedule_handle(schedule_id)
        try:
            await handle.trigger()
            description = await eventually_async(lambda: handle.describe(), lambda d: d.info.recent_actions)
            started = description.info.recent_actions[0].action
            report = await finished(client, started.workflow_id)
            assert [(r.segment, r.entered, r.size) for r in report.segments] == [("prospects", 1, 1)]
            with session_scope(db, readonly=True) as session:
                assert session.exec(select(SegmentMembership.customer_id)).all() == ["p1"]
            # Brought up to date when segments.yaml changes its interval.
            faster = catalog_with(tmp_path / "faster", "refresh: 10m\nsegments:\n  prospects: {rule: \"customer.orders_count == 0\"}\n")
            await handle.pause(note="operator")
            await segments.ensure_refresh_schedule(client, faster)
            described = (await handle.describe()).schedule
            assert [i.every for i in described.spec.intervals] == [timedelta(minutes=10)]
            assert described.state.paused  # an operator's pause survives
        finally:
            await handle.delete()


async def eventually_async(fetch: Any, ready: Any, timeout: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await fetch()
        if ready(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.2)
