"""A batch of events (POST /events with a list) through EventRouter.route_many, on both
databases: each run of quiet events is stored and routed in one transaction, in order,
with repeats found within the batch too; an event that starts something goes the
one-event way in its turn; a run waiting for a batched event hears it; an event whose
store conflicts is rolled back alone and stored on its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from core.event import EventIn
from core.events.store import EventStore
from store.db import session_scope
from store.tables import Customer, Enrollment, Event
from tests.runtime.test_quiet_events import ON_ACTIVE, Transactions
from tests.runtime.support import write_journeys

WAITS_FOR_A_VIEW = """
id: waits
name: Waits for a view
trigger: {manual: true}
steps:
  - wait_for: {event: page_viewed, timeout: 1d}
"""


def _views(run, ids: list[tuple[str, str]]) -> list[EventIn]:  # type: ignore[no-untyped-def]
    return [EventIn(id=event_id, type="page_viewed", customer_id=customer, occurred_at=run.sim.clock)
            for event_id, customer in ids]


def _routed(db) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    with session_scope(db, readonly=True) as session:
        return {row.id: row.routed_at is not None for row in session.exec(select(Event))}


async def test_quiet_events_of_a_batch_are_stored_and_routed_in_one_transaction(journeys_dir: Path,
                                                                                simulation) -> None:
    catalog = write_journeys(journeys_dir, {"on_active": ON_ACTIVE})
    async with simulation(catalog) as run:
        await run.customer(id="b")
        counted = Transactions(run.sim.db)
        batch = _views(run, [(f"view-{n}", ("b", "new-1", "new-2")[n % 3]) for n in range(30)])
        results = await run.sim.router.route_many([*batch, batch[4]])  # the last: a repeat within the batch
        assert counted.count == 1
        assert [r.event_id for r in results] == [e.id for e in batch] + ["view-4"]
        assert [r.duplicate for r in results] == [False] * 30 + [True]
        assert _routed(run.sim.db) == {e.id: True for e in batch}
        with session_scope(run.sim.db, readonly=True) as session:  # customers made for the events, once
            assert sorted(session.exec(select(Customer.id))) == ["b", "new-1", "new-2"]
        again = await run.sim.router.route_many(batch)
        assert all(r.duplicate for r in again)


async def test_an_event_that_starts_a_journey_goes_in_its_turn(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"on_active": ON_ACTIVE})
    async with simulation(catalog) as run:
        await run.customer(id="b")
        entry = EventIn(id="in-active", type="segment_entered", customer_id="b", occurred_at=run.sim.clock,
                        properties={"segment": "active"})
        views = _views(run, [("v1", "b"), ("v2", "b"), ("v3", "b"), ("v4", "b")])
        results = await run.sim.router.route_many([views[0], views[1], entry, views[2], views[3]])
        assert [r.event_id for r in results] == ["v1", "v2", "in-active", "v3", "v4"]
        assert [r.started for r in results] == [[], [], ["on_active"], [], []]
        assert set(_routed(run.sim.db).values()) == {True}
        with session_scope(run.sim.db, readonly=True) as session:
            assert [e.journey_id for e in session.exec(select(Enrollment))] == ["on_active"]


async def test_a_run_waiting_for_a_batched_event_hears_it(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"waits": WAITS_FOR_A_VIEW})
    async with simulation(catalog) as run:
        await run.customer(id="b")
        assert await run.enter("waits", "b")
        results = await run.sim.router.route_many(_views(run, [("v1", "c"), ("v2", "b"), ("v3", "c")]))
        assert [r.signalled for r in results] == [[], ["waits"], []]
        assert (await run.sim.result("waits", "b")).outcome == "completed"
        assert set(_routed(run.sim.db).values()) == {True}


async def test_an_event_whose_store_conflicts_is_rolled_back_alone_and_stored_on_its_own(
        journeys_dir: Path, simulation, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = write_journeys(journeys_dir, {"on_active": ON_ACTIVE})
    async with simulation(catalog) as run:
        real_derive = EventStore._derive
        conflicts: list[str] = []

        def derive_or_conflict(self, session, customer, event):  # type: ignore[no-untyped-def]
            if event.id == "v2" and not conflicts:  # as if stored at the same moment elsewhere
                conflicts.append(event.id)
                raise IntegrityError("INSERT", {}, Exception("duplicate key"))
            return real_derive(self, session, customer, event)

        monkeypatch.setattr(EventStore, "_derive", derive_or_conflict)
        counted = Transactions(run.sim.db)
        results = await run.sim.router.route_many(_views(run, [("v1", "b"), ("v2", "b"), ("v3", "c")]))
        assert conflicts == ["v2"]
        assert [r.duplicate for r in results] == [False, False, False]
        assert counted.count == 2  # the batch, then v2 on its own
        assert _routed(run.sim.db) == {"v1": True, "v2": True, "v3": True}
        with session_scope(run.sim.db, readonly=True) as session:
            assert session.exec(select(Event.id).where(col(Event.id) == "v2")).all() == ["v2"]
