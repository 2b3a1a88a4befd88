"""Segments at runtime: rule segments refreshed by the database, manual ones changed
by journeys (`update_segments`) and the API, and every change announced as a
``segment_entered`` / ``segment_exited`` event through the engine's one event path.

A refresh, per rule segment (segments a rule reads through ``in_segment`` first):

1. In a read-only transaction, the database finds who enters (matches the rule, is
   not a member) and who leaves (a member who no longer matches): two anti-joins
   over the compiled rule (``language.segment_sql``), no Python loop over customers.
2. The changes are applied in bounded batches, each its own short write transaction
   (SQLite serializes writers: a refresh never holds the lock for long), as set-based
   ``INSERT ... ON CONFLICT DO NOTHING`` / ``DELETE ... RETURNING``. The same
   transaction records the customers it really changed in an outbox row, so what
   changed and what is to be announced can never disagree.
3. The segment's size and refresh time are recorded (``segment_refreshes``).
4. The outbox rows are routed, a bounded number of events at a time, with event ids
   made of (refresh, segment, direction, customer); each row is deleted once routed.
   A retried refresh (same refresh id) routes what is left with the same ids, and the
   router does nothing twice for an id. Rows left by a refresh that died for good are
   routed by a later refresh once they are ``OUTBOX_STALE`` old.

The outbox rows live in the ``decisions`` table (keys ``segment-outbox:...``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, delete, exists, func, literal, not_, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, SQLModel, col

from core.clock import utcnow
from core.event import EventIn, EventPath
from language.catalog import Catalog
from language.config import ManualSegment, RuleSegment
from language.segment_sql import CUSTOMERS, MEMBERSHIPS, compile_rule, rule_segments
from store.db import Database, session_scope
from store.tables import Decision, SegmentMembership, SegmentRefresh
from store.types import UtcDateTime
from workflows.contracts import JOURNEY_TASK_QUEUE
from workflows.segment_refresh import (
    SCHEDULE_ID,
    WORKFLOW_NAME,
    RefreshReport,
    SegmentRefreshInput,
    SegmentResult,
)

OUTBOX = "segment-outbox:"
OUTBOX_STALE = timedelta(minutes=30)
BATCH = 1000
MAX_PAUSE = 0.05
CONCURRENCY = 8
REFRESHES = SQLModel.metadata.tables[SegmentRefresh.__tablename__]


class SegmentError(ValueError):
    """A segment that does not exist, or cannot be changed the way it was asked."""


# --- refresh -------------------------------------------------------------------------------


def rule_segment_order(catalog: Catalog, names: Iterable[str] | None = None) -> list[str]:
    """The rule segments to refresh (default: all), each after the segments its rule reads.

    A rule reading ``customer.segments`` as a whole comes after every other; rules that
    read each other (a cycle) keep their file order, each reading the other's last state."""
    rules = {n: s for n, s in catalog.segments.segments.items() if isinstance(s, RuleSegment)}
    wanted = list(rules) if names is None else list(dict.fromkeys(names))
    for name in wanted:
        if name not in catalog.segments.segments:
            raise SegmentError(f"no segment {name!r} in segments.yaml (known: {', '.join(catalog.segments.segments)})")
        if name not in rules:
            raise SegmentError(f"{name!r} is a manual segment: only rule segments are refreshed")
    reads = {}
    for name in wanted:
        used = rule_segments(rules[name].rule)
        reads[name] = {n for n in rules if n != name} if "*" in used else {n for n in used if n in rules and n != name}
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered or name in visiting:
            return
        visiting.add(name)
        for dependency in reads[name]:
            if dependency in reads:
                visit(dependency)
        visiting.discard(name)
        ordered.append(name)

    for name in wanted:
        visit(name)
    return ordered


async def refresh(catalog: Catalog, db: Database, router: EventPath | None, *, at: datetime | None = None,
                  refresh_id: str | None = None, segments: Sequence[str] | None = None, announce: bool = True,
                  concurrency: int = CONCURRENCY, batch_size: int = BATCH,
                  progress: Callable[[str], None] | None = None) -> RefreshReport:
    """Refresh the rule segments (default: all) as of ``at`` (default: now).

    ``refresh_id`` names this refresh: give the same one to a retry of it (the event ids
    derive from it); the default is a fresh one. ``announce=False`` changes memberships
    without events (a first backfill that should start no journeys)."""
    if announce and router is None:
        raise ValueError("a refresh that announces changes needs the event router")
    started = time.monotonic()
    at = at or utcnow()
    report = RefreshReport(refresh_id=refresh_id or f"refresh:{uuid.uuid4().hex}", at=at)
    token = hashlib.sha256(report.refresh_id.encode()).hexdigest()[:16]
    note = progress or (lambda _: None)
    serialized = db.dialect.name == "sqlite"
    if announce:
        assert router is not None
        await _route_outbox(router, db, report, _stale_outbox, concurrency, note)
    for name in rule_segment_order(catalog, segments):
        spec = catalog.segments.segments[name]
        assert isinstance(spec, RuleSegment)
        began = time.monotonic()
        entering, leaving, gone = await asyncio.to_thread(_changes, db, name, spec.rule, at)
        note(f"{name}: {len(entering)} entering, {len(leaving) + len(gone)} leaving")
        result = SegmentResult(segment=name)
        for direction, ids in (("in", entering), ("out", leaving), ("gone", gone)):
            for start in range(0, len(ids), batch_size):
                held = time.monotonic()
                # Checked again as of the refresh's moment moved on by the time it has taken.
                now = at + timedelta(seconds=time.monotonic() - started)
                changed = await asyncio.to_thread(_apply, db, token, name, spec.rule, direction,
                                                  ids[start:start + batch_size], at, now, announce)
                if serialized:  # SQLite: one writer at a time. Leave the lock free as long as we held it,
                    # so the writes of normal traffic waiting for it get in between our batches.
                    await asyncio.sleep(min(time.monotonic() - held, MAX_PAUSE))
                if direction == "in":
                    result.entered += changed
                else:
                    result.exited += changed
        result.size = await asyncio.to_thread(_record, db, name, at)
        if announce:
            assert router is not None

            def own(session: Session, segment: str = name) -> list[Decision]:
                return _outbox_rows(session, f"{OUTBOX}{token}:{segment}:")

            await _route_outbox(router, db, report, own, concurrency, note)
        result.seconds = round(time.monotonic() - began, 3)
        report.segments.append(result)
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _changes(db: Database, name: str, rule: str, at: datetime) -> tuple[list[str], list[str], list[str]]:
    """Who enters, who leaves, and members whose customer no longer exists (erased)."""
    matches = compile_rule(rule, at)
    members = MEMBERSHIPS.alias("members")
    entering = select(CUSTOMERS.c.id).where(
        matches, CUSTOMERS.c.phone_status != "erased",  # an erased customer (core/customers/erasure.py) joins none
        ~exists().where(members.c.segment == name, members.c.customer_id == CUSTOMERS.c.id))
    leaving = (select(members.c.customer_id, CUSTOMERS.c.id.is_(None))
               .select_from(members.outerjoin(CUSTOMERS, CUSTOMERS.c.id == members.c.customer_id))
               .where(members.c.segment == name, or_(CUSTOMERS.c.id.is_(None), not_(matches))))
    with session_scope(db, readonly=True) as session:
        entered = sorted(session.execute(entering).scalars())
        left: list[str] = []
        gone: list[str] = []
        for customer_id, erased in session.execute(leaving):
            (gone if erased else left).append(customer_id)
    return entered, sorted(left), sorted(gone)


def _insert(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgres_insert
        return postgres_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
    return sqlite_insert


def outbox_order() -> str:
    """Outbox keys sort in the order their changes were made: announced in that order too."""
    return f"{time.time_ns():020d}{uuid.uuid4().hex[:8]}"


def _apply(db: Database, token: str, name: str, rule: str, direction: str, ids: list[str], at: datetime,
           now: datetime, announce: bool) -> int:
    """One batch in one short write transaction; returns how many rows really changed."""
    with session_scope(db) as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        # The rule is checked again (as of ``now``) as the batch is written: a customer whose
        # data changed since the read (and whom the event path re-evaluated at once:
        # core.segments.immediate) is neither put back nor taken out on a stale read.
        if direction == "in":  # INSERT ... SELECT over the batch (PostgreSQL: one array)
            among = (CUSTOMERS.c.id == func.any(literal(ids, ARRAY(String))) if postgres
                     else CUSTOMERS.c.id.in_(ids))
            rows = session.execute(
                _insert(session)(MEMBERSHIPS)
                .from_select(["customer_id", "segment", "entered_at"],
                             select(CUSTOMERS.c.id, literal(name, String()), literal(at, UtcDateTime()))
                             .where(among, CUSTOMERS.c.phone_status != "erased", compile_rule(rule, now)))
                .on_conflict_do_nothing().returning(MEMBERSHIPS.c.customer_id))
        else:
            among = (MEMBERSHIPS.c.customer_id == func.any(literal(ids, ARRAY(String))) if postgres
                     else MEMBERSHIPS.c.customer_id.in_(ids))
            still = exists().where(CUSTOMERS.c.id == MEMBERSHIPS.c.customer_id)
            if direction == "out":
                still = exists().where(CUSTOMERS.c.id == MEMBERSHIPS.c.customer_id,
                                       CUSTOMERS.c.phone_status != "erased", compile_rule(rule, now))
            rows = session.execute(delete(MEMBERSHIPS).returning(MEMBERSHIPS.c.customer_id)
                                   .where(MEMBERSHIPS.c.segment == name, among, ~still))
        changed = sorted(rows.scalars())
        if announce and changed and direction != "gone":
            session.add(Decision(key=f"{OUTBOX}{token}:{name}:{direction}:{outbox_order()}",
                                 value={"segment": name, "direction": direction, "at": at.isoformat(),
                                        "customers": changed},
                                 decided_at=utcnow()))
    return len(changed)


def _record(db: Database, name: str, at: datetime) -> int:
    with session_scope(db) as session:
        size = session.execute(select(func.count()).select_from(MEMBERSHIPS)
                               .where(MEMBERSHIPS.c.segment == name)).scalar_one()
        upsert = _insert(session)(REFRESHES).values(segment=name, size=size, refreshed_at=at)
        session.execute(upsert.on_conflict_do_update(index_elements=[REFRESHES.c.segment],
                                                     set_={"size": size, "refreshed_at": at}))
    return int(size)


def _outbox_rows(session: Session, prefix: str) -> list[Decision]:
    return list(session.execute(select(Decision).where(col(Decision.key).startswith(prefix, autoescape=True))
                                .order_by(Decision.key)).scalars())


def _stale_outbox(session: Session) -> list[Decision]:
    return [row for row in _outbox_rows(session, OUTBOX) if row.decided_at < utcnow() - OUTBOX_STALE]


def event_id(key: str, segment: str, direction: str, customer_id: str) -> str:
    """Deterministic per (outbox token, segment, direction, customer); fits the 128 of an event id."""
    readable = f"segment-{direction}:{segment}:{customer_id}:{key}"
    if len(readable) <= 128:
        return readable
    digest = hashlib.sha256(f"{key}|{segment}|{direction}|{customer_id}".encode()).hexdigest()[:40]
    return f"segment-{direction}:{digest}"


def _events_of(row: Decision) -> list[EventIn]:
    token = row.key[len(OUTBOX):].split(":", 1)[0]
    value = row.value
    at = datetime.fromisoformat(value["at"])
    kind = "segment_entered" if value["direction"] == "in" else "segment_exited"
    return [EventIn(id=event_id(token, value["segment"], value["direction"], customer_id), type=kind,
                    customer_id=customer_id, occurred_at=at, properties={"segment": value["segment"]})
            for customer_id in value["customers"]]


async def _route_outbox(router: EventPath, db: Database, report: RefreshReport,
                        rows_of: Callable[[Session], list[Decision]], concurrency: int,
                        note: Callable[[str], None]) -> None:
    def read() -> list[tuple[str, list[EventIn]]]:
        with session_scope(db, readonly=True) as session:
            return [(row.key, _events_of(row)) for row in rows_of(session)]

    for key, events in await asyncio.to_thread(read):
        await route_events(router, events, report, concurrency)
        await asyncio.to_thread(_forget_outbox, db, key)
        note(f"routed {report.events} events")


def _forget_outbox(db: Database, key: str) -> None:
    with session_scope(db) as session:
        session.execute(delete(Decision).where(col(Decision.key) == key))


async def route_events(router: EventPath, events: Sequence[EventIn], report: RefreshReport,
                       concurrency: int = CONCURRENCY) -> None:
    """Route ``events`` through the engine, at most ``concurrency`` at a time.

    When one route fails, no new one begins, the ones under way finish (a route cut
    short could store its event and never start the journey it triggers), and the
    failure is raised: the outbox row stays for the retry."""
    pending = iter(events)
    failures: list[BaseException] = []

    async def worker() -> None:
        for event in pending:  # one shared iterator: each event is taken once
            if failures:
                return
            try:
                result = await router.route(event, source="segments")
            except Exception as err:
                failures.append(err)
                return
            report.events += 1
            report.duplicates += result.duplicate
            report.started += len(result.started)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(events))))))
    if failures:
        raise failures[0]


# --- the schedule --------------------------------------------------------------------------


def refresh_schedule(catalog: Catalog) -> tuple[str, Any]:
    """The Temporal Schedule that refreshes the rule segments every ``segments.refresh``.

    Overlap SKIP: a refresh still running when the next is due lets it pass."""
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleIntervalSpec,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
    )

    every = catalog.segments.refresh
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(WORKFLOW_NAME, SegmentRefreshInput(), id=SCHEDULE_ID,
                                           task_queue=JOURNEY_TASK_QUEUE),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=max(every, timedelta(minutes=1))),
    )
    return SCHEDULE_ID, schedule


def segment_schedules(catalog: Catalog) -> dict[str, Any]:
    """For ``core.journeys.schedules.sync_schedules``: the refresh schedule, if there is a rule segment."""
    if not any(isinstance(s, RuleSegment) for s in catalog.segments.segments.values()):
        return {}
    schedule_id, schedule = refresh_schedule(catalog)
    return {schedule_id: schedule}


async def ensure_refresh_schedule(client: Any, catalog: Catalog) -> str | None:
    """Create the schedule, or bring an existing one up to date (a changed interval,
    keeping an operator's pause); delete it when segments.yaml has no rule segment.
    Returns the schedule id, if any. (The worker uses ``segment_schedules`` instead.)"""
    from temporalio.client import ScheduleAlreadyRunningError, ScheduleUpdate
    from temporalio.service import RPCError, RPCStatusCode

    schedule_id, schedule = refresh_schedule(catalog)
    handle = client.get_schedule_handle(schedule_id)
    if not segment_schedules(catalog):
        try:
            await handle.delete()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        return None
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        def keep_state(update: Any) -> Any:
            schedule.state = update.description.schedule.state
            return ScheduleUpdate(schedule=schedule)

        await handle.update(keep_state)
    return schedule_id


# --- manual segments -----------------------------------------------------------------------


@dataclass
class MembershipChange:
    added: list[str]
    removed: list[str]


def check_manual(catalog: Catalog, name: str) -> None:
    """Raises SegmentError (unknown) or PermissionError (a rule segment)."""
    spec = catalog.segments.segments.get(name)
    if spec is None:
        raise SegmentError(f"no segment {name!r} in segments.yaml")
    if not isinstance(spec, ManualSegment):
        raise PermissionError(f"{name!r} is a rule segment: its members are computed from its rule, so only "
                              "manual segments (manual: true) can be changed")


def apply_memberships(db: Database, customer_id: str, add: Sequence[str], remove: Sequence[str], at: datetime,
                      key: str | None = None) -> MembershipChange:
    """Add and remove memberships in one transaction. With ``key``, the first outcome is
    remembered under it: a retry gets the same answer (and so announces the same events)."""
    with session_scope(db) as session:
        remembered = session.get(Decision, f"segments:{key}") if key else None
        if remembered is not None:
            return MembershipChange(**remembered.value)
        insert = _insert(session)
        added = [name for name in dict.fromkeys(add) if session.execute(
            insert(MEMBERSHIPS).values(customer_id=customer_id, segment=name, entered_at=at)
            .on_conflict_do_nothing().returning(MEMBERSHIPS.c.segment)).first()]
        removed = [name for name in dict.fromkeys(remove) if session.execute(
            delete(MEMBERSHIPS).where(MEMBERSHIPS.c.customer_id == customer_id, MEMBERSHIPS.c.segment == name)
            .returning(MEMBERSHIPS.c.segment)).first()]
        change = MembershipChange(added=added, removed=removed)
        if key:
            session.add(Decision(key=f"segments:{key}", value={"added": added, "removed": removed}, decided_at=at))
        return change


async def change_memberships(router: EventPath, customer_id: str, *, add: Sequence[str] = (),
                             remove: Sequence[str] = (), at: datetime | None = None, key: str,
                             remember: bool = True, source: str = "journey",
                             origin: str | None = None) -> MembershipChange:
    """The one way memberships change outside a refresh (update_segments steps, the API):
    apply, then announce each real change through the event path, with ids from ``key``."""
    at = at or utcnow()
    change = await asyncio.to_thread(apply_memberships, router.db, customer_id, add, remove, at,
                                     key if remember else None)
    events = ([EventIn(id=f"{key}:in:{name}", type="segment_entered", customer_id=customer_id, occurred_at=at,
                       properties={"segment": name}) for name in change.added]
              + [EventIn(id=f"{key}:out:{name}", type="segment_exited", customer_id=customer_id, occurred_at=at,
                         properties={"segment": name}) for name in change.removed])
    for event in events:
        await router.route(event, source=source, origin=origin)
    return change


# --- listing -------------------------------------------------------------------------------


@dataclass
class SegmentInfo:
    name: str
    kind: str  # rule | manual | removed (memberships left of a segment no longer in segments.yaml)
    size: int
    refreshed_at: datetime | None
    definition: str


def overview(catalog: Catalog, db: Database) -> list[SegmentInfo]:
    with session_scope(db, readonly=True) as session:
        sizes: dict[str, int] = dict(session.execute(select(col(SegmentMembership.segment), func.count())
                                                     .group_by(SegmentMembership.segment)).all())
        refreshed = {row.segment: row.refreshed_at for row in session.execute(select(SegmentRefresh)).scalars()}
    rows = []
    for name, spec in catalog.segments.segments.items():
        rule = isinstance(spec, RuleSegment)
        rows.append(SegmentInfo(name, "rule" if rule else "manual", int(sizes.get(name, 0)),
                                refreshed.get(name) if rule else None,
                                spec.rule if isinstance(spec, RuleSegment) else (spec.description or "")))
    rows += [SegmentInfo(name, "removed", int(size), refreshed.get(name), "not in segments.yaml")
             for name, size in sorted(sizes.items()) if name not in catalog.segments.segments]
    return rows
