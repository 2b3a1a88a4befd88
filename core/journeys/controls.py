"""Operators' controls of a journey: pause, resume, stop, drain; of every version or one.

A control is a row in ``journey_controls`` (``version`` a content hash, or ``*``), read
at every admission and every send, so it outlives any process. The effective state of
a run's version is its own row if there is one, else the journey's ``*`` row, else
``active``. A control of every version replaces the version rows.

- ``paused``: admits no one; every send of its runs is held (deferred, never dropped)
  until resumed.
- ``draining``: admits no one; runs go on to their end.
- ``stopped``: admits no one; every run is ended with outcome ``stopped``.

Applying one also tells the running runs at once (the ``control`` signal) and pauses or
unpauses the journey's Temporal Schedule, so the Web UI shows it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core.clock import utcnow
from language.models import DateTrigger, Journey, ScheduleTrigger
from store.db import Database, session_scope
from store.tables import Enrollment, JourneyControl, JourneyVersion
from workflows.io import CONTROL_SIGNAL, ControlSignal

log = logging.getLogger(__name__)

ALL_VERSIONS = "*"
COMMANDS = {"pause": "paused", "resume": "active", "stop": "stopped", "drain": "draining"}
STATES = ("active", "paused", "draining", "stopped")
HOLDING = ("paused", "stopped")  # sends wait (a stopped run ends as soon as it hears)
# How long a held send waits before it asks again, should the resume signal not reach it.
HOLD_RECHECK = timedelta(hours=1)
SCHEDULE_PREFIX = "journey-schedule/"
SCHEDULE_NOTE_PREFIX = "journey "  # a schedule paused by a control: its note starts so
SIGNALS_AT_ONCE = 16


@dataclass(frozen=True)
class Applied:
    journey_id: str
    version: str
    state: str
    runs_signalled: int
    schedule: str | None  # "paused" | "unpaused" | "left paused" (by hand) | None (no schedule)


def state_of(session: Session, journey_id: str, version: str) -> str:
    """The effective state of one version of a journey."""
    rows = {row.version: row.state for row in session.exec(select(JourneyControl).where(
        JourneyControl.journey_id == journey_id, col(JourneyControl.version).in_([version, ALL_VERSIONS])))}
    return rows.get(version) or rows.get(ALL_VERSIONS) or "active"


def admission_refusal(session: Session, journey_id: str, version: str) -> str | None:
    """Why no one may enter this version now (``journey paused``...), or None."""
    state = state_of(session, journey_id, version)
    return None if state == "active" else f"journey {state}"


def held(session: Session, journey_id: str, version: str, at: datetime) -> tuple[datetime, str] | None:
    """For a send held by a control: when to ask again, and the deferral reason
    (``journey_paused`` | ``journey_stopped``); None: it may go."""
    state = state_of(session, journey_id, version)
    return (at + HOLD_RECHECK, f"journey_{state}") if state in HOLDING else None


def list_controls(db: Database, journey_id: str | None = None) -> list[JourneyControl]:
    with session_scope(db, readonly=True) as session:
        query = select(JourneyControl).order_by(JourneyControl.journey_id, JourneyControl.version)
        if journey_id is not None:
            query = query.where(JourneyControl.journey_id == journey_id)
        return list(session.exec(query).all())


def is_scheduled(journey: Journey | None) -> bool:
    """A time-based journey: it has a Temporal Schedule to pause."""
    return isinstance(journey.trigger, ScheduleTrigger | DateTrigger) if journey is not None else False


def known_journey(db: Database, journey_id: str, known: set[str]) -> bool:
    """In the journeys directory (``known``), or once run (a version stored)."""
    if journey_id in known:
        return True
    with session_scope(db, readonly=True) as session:
        return session.exec(select(JourneyVersion.version).where(JourneyVersion.journey_id == journey_id)).first() \
            is not None


def known_version(db: Database, journey_id: str, version: str, current: str | None) -> bool:
    """The journey's current version (``current``), or one it once ran."""
    if version == current:
        return True
    with session_scope(db, readonly=True) as session:
        return session.get(JourneyVersion, (journey_id, version)) is not None


def set_control(db: Database, journey_id: str, state: str, *, version: str | None = None, by: str,
                note: str | None = None, at: datetime | None = None) -> JourneyControl:
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    target = version or ALL_VERSIONS
    with session_scope(db) as session:
        if target == ALL_VERSIONS:  # every version: version rows would otherwise win over it
            session.exec(delete(JourneyControl).where(
                col(JourneyControl.journey_id) == journey_id, col(JourneyControl.version) != ALL_VERSIONS))
        row = session.get(JourneyControl, (journey_id, target)) or JourneyControl(
            journey_id=journey_id, version=target, state=state, changed_by=by, changed_at=at or utcnow())
        row.state, row.changed_by, row.changed_at, row.note = state, by, at or utcnow(), note
        session.add(row)
        session.flush()
        session.expunge(row)
        return row


def _active_runs(db: Database, journey_id: str, version: str | None) -> list[tuple[str, str]]:
    """The journey's running runs (of one version, or all), each with its effective state."""
    with session_scope(db, readonly=True) as session:
        query = select(Enrollment.workflow_id, Enrollment.journey_version).where(
            Enrollment.journey_id == journey_id, Enrollment.status == "active",
            col(Enrollment.started_at).is_not(None))
        if version is not None:
            query = query.where(Enrollment.journey_version == version)
        states: dict[str, str] = {}
        runs = []
        for workflow_id, run_version in session.exec(query).all():
            if run_version not in states:  # a version row may differ from the `*` row
                states[run_version] = state_of(session, journey_id, run_version)
            runs.append((workflow_id, states[run_version]))
        return runs


async def apply_control(db: Database, client: Client, journey_id: str, command: str, *,
                        version: str | None = None, by: str, note: str | None = None,
                        scheduled: bool = False) -> Applied:
    """Store the control, then tell the journey's running runs and, for a time-based
    journey (``scheduled``) and a control of every version, its Temporal Schedule."""
    if command not in COMMANDS:
        raise ValueError(f"command must be one of {', '.join(COMMANDS)}, not {command!r}")
    state = COMMANDS[command]
    await asyncio.to_thread(set_control, db, journey_id, state, version=version, by=by, note=note)
    runs = await asyncio.to_thread(_active_runs, db, journey_id, version)
    gate = asyncio.Semaphore(SIGNALS_AT_ONCE)

    async def tell(workflow_id: str, effective: str) -> int:
        async with gate:
            try:
                await client.get_workflow_handle(workflow_id).signal(CONTROL_SIGNAL, ControlSignal(state=effective))
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:  # ended meanwhile
                    return 0
                raise
            return 1

    signalled = sum(await asyncio.gather(*(tell(w, v) for w, v in runs)))
    schedule = await _steer_schedule(client, journey_id, state, note) if scheduled and version is None else None
    log.info("journey %s version %s: %s (%d runs told)", journey_id, version or ALL_VERSIONS, state, signalled)
    return Applied(journey_id, version or ALL_VERSIONS, state, signalled, schedule)


async def _steer_schedule(client: Client, journey_id: str, state: str, note: str | None) -> str | None:
    """Pause the journey's schedule, or unpause it on a resume. A schedule an operator
    paused by hand (its note is not one of ours) is theirs: left as it is, ``left paused``."""
    handle = client.get_schedule_handle(f"{SCHEDULE_PREFIX}{journey_id}")
    ours = tuple(f"{SCHEDULE_NOTE_PREFIX}{other}" for other in STATES if other != "active")
    try:
        current = (await handle.describe()).schedule.state
        if current.paused and not (current.note or "").startswith(ours):
            return "left paused"
        if state == "active":
            await handle.unpause(note=f"{SCHEDULE_NOTE_PREFIX}resumed" + (f": {note}" if note else ""))
            return "unpaused"
        await handle.pause(note=f"{SCHEDULE_NOTE_PREFIX}{state}" + (f": {note}" if note else ""))
        return "paused"
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # not created yet (no worker has started since the YAML)
            return None
        raise
