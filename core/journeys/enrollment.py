"""Entering customers into journeys: admission (core/journeys/admission.py), then the start.

A customer is never in two runs of one journey at once: the workflow id is
``journey/<journey>/<customer>`` and Temporal refuses a second running workflow with
the same id; the enrollments table adds the reentry history on top. A journey with a
``run_key`` holds that per key: ``journey/<journey>/<customer>/<key hash>`` (and a unique
index on active keyed rows); reentry (``never``, a window) still counts every run of the
customer, whatever its key.

Exit, then admission: a trigger event that is also one of the journey's ``exit_on`` events
for the customer's run of the same key ends that run first (the router signalled it);
admission waits, a bounded moment, for that run to close, then judges the entry.

An entry is two writes: the enrollment row, then the workflow start. A crash (or an
unanswered start) between them leaves a half-made entry (``started_at`` unset): whoever
finds it next, the retried event, another event or the sweeper, finishes it by starting
its workflow; nothing ever discards it. Each run carries its enrollment id in its memo,
so the two sides can always be matched (``settle_run``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from core.clock import utcnow
from core.group_commit import GroupCommit
from core.journeys.admission import Admission, Admissions, triggers
from core.validation import opaque_customer_id
from language.catalog import Catalog, PinnedJourney
from language.models import Journey
from store.db import Database, session_scope
from store.tables import Enrollment, JourneyVersion
from workflows.contracts import JOURNEY_TASK_QUEUE
from workflows.io import WORKFLOW_NAME, JourneyInput, start_attributes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """Whether a customer was entered, and if not, why (audience, reentry, ...)."""

    started: bool
    reason: str = ""
    workflow_id: str | None = None  # the run entered


ENROLLMENT_MEMO = "enrollment"
# How a run that ended without its journey's own finish (an operator, a timeout) is recorded.
# How long admission waits for a run that the same event is ending through exit_on.
EXIT_WAIT_SECONDS = 5.0
CLOSED_OUTCOMES = {
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "lost",
}


def close_run(db: Database, enrollment_id: str, outcome: str) -> bool:
    """End an active row whose run is over (or gone); True if it changed."""
    with session_scope(db) as session:
        run = session.get(Enrollment, enrollment_id)
        if run is None or run.status != "active":
            return False
        run.status, run.outcome, run.ended_at = "ended", outcome, utcnow()
        session.add(run)
        log.warning("enrollment %s: its run ended outside the journey (%s)", enrollment_id, outcome)
        return True


def mark_started(db: Database, *enrollment_ids: str) -> None:
    with session_scope(db) as session:
        session.connection().execute(update(Enrollment).where(
            col(Enrollment.id).in_(enrollment_ids), col(Enrollment.started_at).is_(None)).values(started_at=utcnow()))


class Starter:
    def __init__(self, catalog: Catalog, db: Database, client: Client, *, simulated: bool = False,
                 clock_offset_seconds: float = 0.0) -> None:
        self.catalog = catalog
        self.db = db
        self.client = client
        self.simulated = simulated
        self.clock_offset_seconds = clock_offset_seconds
        self.admissions = Admissions(catalog, db)
        # Concurrent starts' "started" marks, one statement for those that came together.
        self._marks: GroupCommit[None, str, None] = GroupCommit(self._mark_many)

    async def maybe_start(self, pinned: PinnedJourney, customer_id: str, event_id: str, event_type: str) -> bool:
        """Start ``pinned`` for the customer if this event triggers it."""
        entry = await self.maybe_enter(pinned, customer_id, event_id, event_type)
        return entry is not None and entry.started

    async def maybe_enter(self, pinned: PinnedJourney, customer_id: str, event_id: str,
                          event_type: str, properties: dict[str, Any] | None = None) -> Entry | None:
        """Like ``maybe_start``, with the reason for a refusal; None: this event is not a trigger.
        With the event's ``properties``, a segment trigger is matched here too: an event that
        triggers nothing costs no admission transaction."""
        if not triggers(pinned.journey, event_type, properties):
            return None
        return await self.enter(pinned, customer_id, trigger_event_id=event_id)

    async def start(self, pinned: PinnedJourney, customer_id: str, *, trigger_event_id: str | None = None,
                    occasion: str | None = None, check_trigger: bool = True, at: datetime | None = None) -> bool:
        """Enter the customer if the journey's rules allow; raises ValueError for an id
        that is not opaque (it would end up in the workflow id).

        ``at``: the moment of entry when no trigger event gives it (a schedule's firing
        time, a simulated clock); audience and reentry are judged at that moment."""
        entry = await self.enter(pinned, customer_id, trigger_event_id=trigger_event_id, occasion=occasion,
                                 check_trigger=check_trigger, at=at)
        return entry.started

    async def enter(self, pinned: PinnedJourney, customer_id: str, *, trigger_event_id: str | None = None,
                    occasion: str | None = None, check_trigger: bool = True, at: datetime | None = None) -> Entry:
        """``start``, saying why not when the customer was not entered."""
        opaque_customer_id(customer_id)
        admission = await self._admission(pinned, customer_id, trigger_event_id, occasion, check_trigger, at)
        if admission.active is not None:
            state = await self.settle_run(admission.active)
            if state == "started":  # a half-made entry, finished now
                return Entry(True, workflow_id=admission.active.workflow_id)
            if state == "running" and self._exits(pinned.journey, admission.refused_event_type):
                state = await self._await_end(admission.active)
            if state == "ended":  # its run was over without the database hearing: judge again
                admission = await self._admission(pinned, customer_id, trigger_event_id, occasion, check_trigger,
                                                  at)
        if not admission.allowed:
            log.debug("not entering %s: %s", pinned.journey.id, admission.reason)
            return Entry(False, admission.reason)
        assert admission.enrollment is not None
        started = await self._start_run(admission.enrollment, pinned)
        return Entry(started, "" if started else "already in this journey",
                     admission.enrollment.workflow_id if started else None)

    async def enter_many(self, pinned: PinnedJourney, occasions: Sequence[tuple[str, str]], *, at: datetime,
                         in_flight: int = 16) -> list[Entry]:
        """``enter`` each (customer, occasion) of a schedule's page at ``at``, no trigger
        event: one admission transaction for them all, then the starts ``in_flight`` at a
        time, each marked started as soon as it is confirmed (the marks of starts confirmed
        together in one statement), so the page's entries are half-made only for a moment.
        A customer the batch cannot judge alone (no profile yet, a run already in the
        journey to settle, twice in the page, an occasion admitted concurrently) takes
        ``enter``'s own path."""
        for customer_id, _ in occasions:
            opaque_customer_id(customer_id)
        try:
            admissions = await asyncio.to_thread(self.admissions.admit_many, pinned, occasions, at)
        except IntegrityError:
            admissions = [None] * len(occasions)
        limit = asyncio.Semaphore(in_flight)

        async def one(customer_id: str, occasion: str, admission: Admission | None) -> Entry:
            async with limit:
                if admission is None or admission.active is not None:
                    return await self.enter(pinned, customer_id, occasion=occasion, check_trigger=False, at=at)
                if not admission.allowed:
                    return Entry(False, admission.reason)
                assert admission.enrollment is not None
                if not await self._start_run(admission.enrollment, pinned):
                    return Entry(False, "already in this journey")
                return Entry(True, workflow_id=admission.enrollment.workflow_id)

        return list(await asyncio.gather(*(one(customer_id, occasion, admission) for (customer_id, occasion),
                                           admission in zip(occasions, admissions, strict=True))))

    @staticmethod
    def _exits(journey: Journey, event_type: str | None) -> bool:
        return event_type is not None and any(rule.event == event_type for rule in journey.exit_on)

    async def _await_end(self, run: Enrollment) -> str:
        """The run, signalled an exit_on event by the router, ends it; wait (a bounded
        moment) for that, then settle. ``running``: it did not end (the rule's where was
        false, or the run is slow): the entry is refused as usual."""
        deadline = asyncio.get_running_loop().time() + EXIT_WAIT_SECONDS
        handle = self.client.get_workflow_handle(run.workflow_id)
        while asyncio.get_running_loop().time() < deadline:
            try:
                description = await handle.describe()
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                break
            if description.status != WorkflowExecutionStatus.RUNNING:
                break
            await asyncio.sleep(0.05)
        return await self.settle_run(run)

    async def _start_run(self, run: Enrollment, pinned: PinnedJourney) -> bool:
        """Start the workflow of an admitted enrollment; True once Temporal has it and its
        row says so. An error that leaves the start unknown propagates and leaves the entry
        half-made."""
        journey = pinned.journey
        try:
            await self.client.start_workflow(
                WORKFLOW_NAME,
                JourneyInput(enrollment_id=run.id, customer_id=run.customer_id, pinned=pinned,
                             trigger_event_id=run.trigger_event_id, simulated=self.simulated,
                             clock_offset_seconds=self.clock_offset_seconds),
                id=run.workflow_id,
                task_queue=JOURNEY_TASK_QUEUE,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=start_attributes(journey.id, pinned.version, run.customer_id),
                memo={ENROLLMENT_MEMO: run.id},
                static_summary=f"{journey.name} (v{pinned.version})",
                static_details=f"Customer `{run.customer_id}` entered `{journey.id}` version `{pinned.version}`.",
                request_eager_start=not self.simulated,
            )
        except WorkflowAlreadyStartedError:
            owner = await self._running_owner(run.workflow_id)
            if owner != run.id:
                # Another run of this journey is running for the customer, which the
                # database had closed: it is the customer's run; this entry never started.
                await asyncio.to_thread(self._adopt, owner, run.id)
                return False
        await self._marks.submit(run.id, None)
        return True

    def _mark_many(self, enrollment_ids: Sequence[str], _: None) -> list[None]:
        mark_started(self.db, *enrollment_ids)
        return [None] * len(enrollment_ids)

    async def settle_run(self, run: Enrollment) -> str:
        """Bring an active row and Temporal into agreement: ``running`` (its run is),
        ``started`` (a half-made entry, started now) or ``ended`` (its run is over; the
        row is closed)."""
        if run.started_at is None:
            return "started" if await self._start_run(run, self._pinned(run)) else "running"
        try:
            description = await self.client.get_workflow_handle(run.workflow_id).describe()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            await asyncio.to_thread(close_run, self.db, run.id, "lost")  # its history is gone (retention)
            return "ended"
        owner = await description.memo_value(ENROLLMENT_MEMO, None)
        if owner not in (None, run.id):  # the newest run is another entry's: ours ended before it
            await asyncio.to_thread(close_run, self.db, run.id, "lost")
            return "ended"
        if description.status == WorkflowExecutionStatus.RUNNING:
            return "running"
        outcome = CLOSED_OUTCOMES.get(description.status) if description.status else None
        await asyncio.to_thread(close_run, self.db, run.id, outcome or "lost")
        return "ended"

    async def _running_owner(self, workflow_id_: str) -> str | None:
        try:
            description = await self.client.get_workflow_handle(workflow_id_).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        return await description.memo_value(ENROLLMENT_MEMO, None)

    def _adopt(self, owner: str | None, unstarted_id: str) -> None:
        with session_scope(self.db) as session:
            unstarted = session.get(Enrollment, unstarted_id)
            if unstarted is not None and unstarted.started_at is None:
                session.delete(unstarted)
                session.flush()  # before reopening: one active row per journey, customer and key
            running = session.get(Enrollment, owner) if owner else None
            if running is not None and running.status != "active":
                running.status, running.outcome, running.ended_at = "active", None, None
                running.started_at = running.started_at or running.entered_at
                session.add(running)
                log.warning("enrollment %s: its run is running; reopened", running.id)

    def _pinned(self, run: Enrollment) -> PinnedJourney:
        """The journey version the entry was admitted with (the catalog's, or the stored one)."""
        current = self.catalog.journeys.get(run.journey_id)
        if current is not None and current.version == run.journey_version:
            return current
        with session_scope(self.db, readonly=True) as session:
            stored = session.get(JourneyVersion, (run.journey_id, run.journey_version))
            if stored is None:
                raise LookupError(f"enrollment {run.id}: journey version {run.journey_version} is not stored")
            return PinnedJourney(journey=Journey.model_validate(stored.definition), version=run.journey_version)

    async def finish_half_made(self, limit: int = 200) -> int:
        """The sweeper's part: start every half-made entry; returns how many."""
        with session_scope(self.db, readonly=True) as session:
            rows = session.exec(select(Enrollment).where(Enrollment.status == "active",
                                                         col(Enrollment.started_at).is_(None)).limit(limit)).all()
        finished = 0
        for run in rows:
            try:
                finished += await self.settle_run(run) == "started"
            except Exception:  # one that cannot be started must not hold back the others
                log.exception("enrollment %s: could not be started yet", run.id)
        return finished

    async def _admission(self, pinned: PinnedJourney, customer_id: str, trigger_event_id: str | None,
                         occasion: str | None, check_trigger: bool, at: datetime | None) -> Admission:
        try:
            admission = await asyncio.to_thread(self.admissions.admit, pinned, customer_id, trigger_event_id,
                                                occasion, check_trigger, at)
        except IntegrityError:  # the same occasion (or run key) admitted concurrently
            return Admission(False, "occasion already entered")
        return admission
