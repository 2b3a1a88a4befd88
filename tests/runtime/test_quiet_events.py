"""Events that start, signal and re-evaluate nothing are routed in the transaction that
stores them; a segment trigger is matched before admission, so other events of the
customer cost that journey no transaction."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlmodel import col, select

from core.event import EventIn
from core.events.grouping import PlainGroups
from core.events.store import Stored
from store.db import session_scope
from store.tables import Customer, Enrollment, Event, JourneyVersion
from tests.runtime.support import write_journeys

ON_ACTIVE = """
id: on_active
name: On active
trigger: {segment_entered: active}
steps:
  - wait: 1d
"""


class Transactions:
    def __init__(self, db: Any) -> None:
        self.count = 0
        self._lock = threading.Lock()
        sa_event.listen(db, "begin", self._begin)

    def _begin(self, _connection: Any) -> None:
        with self._lock:
            self.count += 1


async def test_an_event_nothing_reads_is_stored_and_routed_in_one_transaction(journeys_dir: Path,
                                                                              simulation) -> None:
    catalog = write_journeys(journeys_dir, {"on_active": ON_ACTIVE})
    async with simulation(catalog) as run:
        await run.customer(id="b")
        router = run.sim.router
        counted = Transactions(run.sim.db)
        result = await router.route(EventIn(id="view-1", type="page_viewed", customer_id="b",
                                            occurred_at=run.sim.clock))
        assert counted.count == 1
        assert not (result.started or result.signalled or result.refused or result.duplicate)
        with session_scope(run.sim.db, readonly=True) as session:
            assert session.exec(select(Event.routed_at).where(Event.id == "view-1")).one() is not None
        assert (await router.route(EventIn(id="view-1", type="page_viewed", customer_id="b",
                                           occurred_at=run.sim.clock))).duplicate

        # Another segment's entry triggers nothing; the journey's own segment starts it.
        await router.route(EventIn(id="in-follow", type="segment_entered", customer_id="b",
                                   occurred_at=run.sim.clock, properties={"segment": "follow_up"}))
        with session_scope(run.sim.db, readonly=True) as session:
            assert session.exec(select(Enrollment)).all() == []
        entered = await router.route(EventIn(id="in-active", type="segment_entered", customer_id="b",
                                             occurred_at=run.sim.clock, properties={"segment": "active"}))
        assert entered.started == ["on_active"]


class Statements:
    def __init__(self, db: Any) -> None:
        self.sql: list[str] = []
        sa_event.listen(db, "before_cursor_execute", self._execute)

    def _execute(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.sql.append(statement.split()[0].upper())


async def test_a_quiet_event_of_a_known_customer_takes_three_statements(journeys_dir: Path, simulation) -> None:
    """The plain path: no customer row loaded or locked, the repeat found by the insert."""
    catalog = write_journeys(journeys_dir, {"on_active": ON_ACTIVE})
    async with simulation(catalog) as run:
        await run.customer(id="b")
        router = run.sim.router
        seen = Statements(run.sim.db)
        view = EventIn(id="view-1", type="page_viewed", customer_id="b", occurred_at=run.sim.clock)
        await router.route(view)
        assert [s for s in seen.sql if s not in ("BEGIN", "COMMIT", "ROLLBACK")] == ["SELECT", "SELECT", "INSERT"]
        with session_scope(run.sim.db, readonly=True) as session:
            stored = session.get(Event, "view-1")
            assert stored is not None and stored.routed_at is not None and stored.source == "api"
        assert (await router.route(view)).duplicate

        # Stored but never routed (the process died before routing): a repeat finishes it.
        with session_scope(run.sim.db) as session:
            session.add(Event(id="view-2", customer_id="b", type="page_viewed", occurred_at=run.sim.clock,
                              received_at=run.sim.clock, properties={}))
        again = await router.route(EventIn(id="view-2", type="page_viewed", customer_id="b", occurred_at=run.sim.clock))
        assert not again.duplicate
        with session_scope(run.sim.db, readonly=True) as session:
            assert session.exec(select(Event.routed_at).where(Event.id == "view-2")).one() is not None

        # A customer nobody made yet: the full path makes the profile.
        await router.route(EventIn(id="view-3", type="page_viewed", customer_id="new", occurred_at=run.sim.clock))
        with session_scope(run.sim.db, readonly=True) as session:
            made = session.get(Customer, "new")
            assert made is not None and made.referral_code


VIEWER = """
id: viewer
name: Viewer
trigger: {event: signup}
steps:
  - wait_for: {event: page_viewed, timeout: 1d}
    then: [{exit: viewed}]
    else: [{exit: not_viewed}]
"""


def _view(event_id: str, customer: str, at: Any) -> EventIn:
    return EventIn(id=event_id, type="page_viewed", customer_id=customer, occurred_at=at)


async def test_a_batch_of_quiet_events_is_stored_in_three_statements_with_the_outcomes_one_by_one_has(
        journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"on_active": ON_ACTIVE, "viewer": VIEWER})
    async with simulation(catalog) as run:
        for name in ("b", "c", "d"):
            await run.customer(id=name)
        router, clock = run.sim.router, run.sim.clock
        seen = Statements(run.sim.db)
        quiet = [_view(f"quiet-{n}", "bcd"[n % 3], clock) for n in range(30)]
        results = await router.route_many(quiet)
        assert [s for s in seen.sql if s not in ("BEGIN", "COMMIT", "ROLLBACK")] == ["SELECT", "SELECT", "INSERT"]
        assert not any(r.duplicate or r.signalled or r.started for r in results)
        with session_scope(run.sim.db, readonly=True) as session:
            rows = session.exec(select(Event).where(col(Event.id).startswith("quiet-"))).all()
            assert len(rows) == 30 and all(r.routed_at is not None and r.source == "api" for r in rows)

        # Between them: a run listening (signalled), a repeat within the batch and of an
        # earlier one, one stored and never routed (finished), a customer nobody made yet
        # (made by the full path), and a signup, which starts a run: the view after it
        # reaches that run, as it would one by one.
        assert (await router.route(EventIn(id="signup-c", type="signup", customer_id="c",
                                           occurred_at=clock))).started == ["viewer"]
        with session_scope(run.sim.db) as session:
            session.add(Event(id="unrouted", customer_id="b", type="page_viewed", occurred_at=clock,
                              received_at=clock, properties={}))
        mixed = [_view("m-1", "b", clock), _view("m-2", "c", clock), _view("m-1", "b", clock),
                 _view("quiet-0", "b", clock), _view("unrouted", "b", clock), _view("m-3", "new", clock),
                 EventIn(id="signup-d", type="signup", customer_id="d", occurred_at=clock),
                 _view("m-4", "d", clock), _view("m-5", "b", clock)]
        results = await router.route_many(mixed)
        assert [r.event_id for r in results] == [e.id for e in mixed]
        assert [r.duplicate for r in results] == [False, False, True, True, False, False, False, False, False]
        assert [r.signalled for r in results] == [[], ["viewer"], [], [], [], [], [], ["viewer"], []]
        assert results[6].started == ["viewer"]
        with session_scope(run.sim.db, readonly=True) as session:
            assert session.get(Customer, "new") is not None
            stored = session.exec(select(Event).where(col(Event.id).in_(["m-1", "m-2", "m-3", "m-4", "m-5",
                                                                         "unrouted"]))).all()
            assert len(stored) == 6 and all(row.routed_at is not None for row in stored)
        for customer in ("c", "d"):
            assert (await run.timeline("viewer", customer))["outcome"] == "viewed"


async def test_quiet_events_of_concurrent_callers_are_stored_together(journeys_dir: Path, simulation) -> None:
    """One POST /events per event, many in flight: a group commit, each caller answered
    once its own event is stored."""
    catalog = write_journeys(journeys_dir, {"on_active": ON_ACTIVE})
    async with simulation(catalog) as run:
        await run.customer(id="b")
        seen = Statements(run.sim.db)
        views = [_view(f"together-{n}", "b", run.sim.clock) for n in range(20)]
        results = await asyncio.gather(*(run.sim.router.route(view) for view in views))
        assert [r.event_id for r in results] == [v.id for v in views] and not any(r.duplicate for r in results)
        assert 1 <= seen.sql.count("INSERT") <= 2
        with session_scope(run.sim.db, readonly=True) as session:
            rows = session.exec(select(Event).where(col(Event.id).startswith("together-"))).all()
            assert len(rows) == 20 and all(row.routed_at is not None for row in rows)


async def test_a_group_that_fails_is_stored_one_by_one_so_a_failure_is_only_its_own_callers() -> None:
    calls: list[list[str]] = []

    def store_many(events: Any, source: str) -> list[Any]:
        calls.append([e.id for e in events])
        if any(e.id == "bad" for e in events):
            raise RuntimeError("cannot store it")
        return [Stored(running=[], derived=[]) for _ in events]

    groups = PlainGroups(store_many)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    outcomes = await asyncio.gather(*(groups.store(_view(name, "b", at), "api") for name in ("a", "bad", "c", "d")),
                                    return_exceptions=True)
    assert isinstance(outcomes[1], RuntimeError)
    assert all(isinstance(outcomes[i], Stored) for i in (0, 2, 3))
    assert calls[0] == ["a", "bad", "c", "d"] and sorted(calls[1:]) == [["a"], ["bad"], ["c"], ["d"]]


class Inserts:
    """The tables INSERT statements write to."""

    def __init__(self, db: Any) -> None:
        self.tables: list[str] = []
        sa_event.listen(db, "before_cursor_execute", self._execute)

    def _execute(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        if words[0].upper() == "INSERT":
            self.tables.append(words[2].strip('"'))


async def test_a_journey_version_is_written_by_its_first_admission_only(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"viewer": VIEWER})
    async with simulation(catalog) as run:
        for name in ("b", "c"):
            await run.customer(id=name)
        seen = Inserts(run.sim.db)
        for name in ("b", "c"):
            entered = await run.sim.router.route(EventIn(id=f"signup-{name}", type="signup", customer_id=name,
                                                         occurred_at=run.sim.clock))
            assert entered.started == ["viewer"]
        assert seen.tables.count("journey_versions") == 1 and seen.tables.count("enrollments") == 2
        with session_scope(run.sim.db, readonly=True) as session:
            assert len(session.exec(select(JourneyVersion)).all()) == 1
