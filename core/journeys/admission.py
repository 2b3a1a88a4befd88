"""Admission: whether a customer may enter a journey now, judged in the database.

The trigger's where, the audience, the occasion, the run key and reentry, against the
customer's runs of the journey; an allowed admission adds its enrollment row (not
started yet) in the same transaction. ``Starter`` (core/journeys/enrollment.py) starts
the runs admitted.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from core.clock import utcnow
from core.customers.context import expression_context
from core.customers.records import ensure_customer
from core.journeys.controls import admission_refusal
from core.journeys.run_keys import key_of
from language.catalog import Catalog, PinnedJourney
from language.expressions import ExpressionError, customer_reads, is_true
from language.models import EventTrigger, Journey, SegmentEnteredTrigger, SegmentExitedTrigger
from store.db import Database, insert_ignoring_duplicates, session_scope
from store.tables import Customer, Enrollment, Event, JourneyVersion
from workflows.io import workflow_id

log = logging.getLogger(__name__)


@dataclass
class Admission:
    allowed: bool
    reason: str = ""
    enrollment: Enrollment | None = None  # the row admitted, not started yet
    active: Enrollment | None = None  # the run that is already in this journey, if any
    refused_event_type: str | None = None  # the trigger event's type when ``active`` refused it


def trigger_matches(journey: Journey, event_type: str, properties: dict[str, Any]) -> bool:
    trigger = journey.trigger
    if isinstance(trigger, EventTrigger):
        return trigger.event == event_type
    if isinstance(trigger, SegmentEnteredTrigger):
        return event_type == "segment_entered" and properties.get("segment") == trigger.segment_entered
    if isinstance(trigger, SegmentExitedTrigger):
        return event_type == "segment_exited" and properties.get("segment") == trigger.segment_exited
    return False


def triggers(journey: Journey, event_type: str, properties: dict[str, Any] | None = None) -> bool:
    """Whether an event of this type may start ``journey`` (None ``properties``: unknown
    here, a segment trigger is checked on the stored event)."""
    if not isinstance(journey.trigger, EventTrigger | SegmentEnteredTrigger | SegmentExitedTrigger):
        return False
    if isinstance(journey.trigger, EventTrigger):
        return journey.trigger.event == event_type
    return properties is None or trigger_matches(journey, event_type, properties)


def _reads(*expressions: str | None) -> frozenset[str] | None:
    """The customer fields the entry conditions name (None: any)."""
    named: set[str] = set()
    for expression in filter(None, expressions):
        reads = customer_reads(expression, template=False)
        if reads is None:
            return None
        named |= reads
    return frozenset(named)


class Admissions:
    """Admission transactions of one process."""

    def __init__(self, catalog: Catalog, db: Database) -> None:
        self.catalog = catalog
        self.db = db
        # (journey, version) whose journey_versions row an admission of this process
        # committed: versions are never deleted, so later admissions skip the statement.
        self.versions_kept: set[tuple[str, str]] = set()

    def admit(self, pinned: PinnedJourney, customer_id: str, trigger_event_id: str | None,
              occasion: str | None, check_trigger: bool, entry_at: datetime | None) -> Admission:
        """The customer's admission, committed (IntegrityError: the same occasion or run
        key admitted concurrently)."""
        admission = self._admit(pinned, customer_id, trigger_event_id, occasion, check_trigger, entry_at)
        self._committed(pinned, [admission])
        return admission

    def admit_many(self, pinned: PinnedJourney, occasions: Sequence[tuple[str, str]],
                   at: datetime) -> list[Admission | None]:
        """``admit`` each (customer, occasion) at ``at``, no trigger event, in one
        transaction of four statements whatever their number (controls, customers, their
        runs, the inserts); None: judge that one alone (``Starter.enter_many``)."""
        admissions = self._admit_many(pinned, occasions, at)
        self._committed(pinned, admissions)
        return admissions

    def _committed(self, pinned: PinnedJourney, admissions: Sequence[Admission | None]) -> None:
        if any(admission and admission.allowed for admission in admissions):  # its version's row is there now
            self.versions_kept.add((pinned.journey.id, pinned.version))

    def _admit(self, pinned: PinnedJourney, customer_id: str, trigger_event_id: str | None,
               occasion: str | None, check_trigger: bool, entry_at: datetime | None) -> Admission:
        journey = pinned.journey
        now = utcnow()
        with session_scope(self.db) as session:
            if refusal := admission_refusal(session, journey.id, pinned.version):  # paused, draining, stopped
                return Admission(False, refusal)
            trigger = session.get(Event, trigger_event_id) if trigger_event_id else None
            if check_trigger and trigger is not None and not trigger_matches(journey, trigger.type,
                                                                             trigger.properties):
                return Admission(False, "trigger does not match")
            at = trigger.occurred_at if trigger else (entry_at or now)
            customer = ensure_customer(session, customer_id, now)

            def previous() -> list[Enrollment]:  # the customer's runs of this journey, newest first
                return list(session.exec(
                    select(Enrollment).where(Enrollment.journey_id == journey.id,
                                             Enrollment.customer_id == customer_id)
                    .order_by(Enrollment.entered_at.desc())  # type: ignore[attr-defined]
                ).all())

            admission = self._judge(session, pinned, customer, previous, occasion=occasion, at=at,
                                    check_trigger=check_trigger, trigger=trigger, trigger_event_id=trigger_event_id)
            if admission.allowed:
                assert admission.enrollment is not None
                self._keep_version(session, pinned, now)
                session.add(admission.enrollment)
            return admission

    def _admit_many(self, pinned: PinnedJourney, occasions: Sequence[tuple[str, str]],
                    at: datetime) -> list[Admission | None]:
        journey = pinned.journey
        now = utcnow()
        with session_scope(self.db) as session:
            if refusal := admission_refusal(session, journey.id, pinned.version):
                return [Admission(False, refusal)] * len(occasions)
            ids = sorted({customer_id for customer_id, _ in occasions})
            customers = {row.id: row for row in session.exec(select(Customer).where(col(Customer.id).in_(ids)))}
            runs: defaultdict[str, list[Enrollment]] = defaultdict(list)  # newest first
            for run in session.exec(select(Enrollment).where(Enrollment.journey_id == journey.id,
                                                             col(Enrollment.customer_id).in_(ids))
                                    .order_by(Enrollment.entered_at.desc())):  # type: ignore[attr-defined]
                runs[run.customer_id].append(run)
            admissions: list[Admission | None] = []
            judged: set[str] = set()
            for customer_id, occasion in occasions:
                customer = customers.get(customer_id)
                if customer is None or customer_id in judged:
                    admissions.append(None)
                    continue
                judged.add(customer_id)
                runs_of = functools.partial(runs.__getitem__, customer_id)
                admissions.append(self._judge(session, pinned, customer, runs_of, occasion=occasion, at=at))
            admitted = [admission.enrollment for admission in admissions
                        if admission and admission.allowed and admission.enrollment]
            if admitted:
                self._keep_version(session, pinned, now)
                session.add_all(admitted)
            return admissions

    def _judge(self, session: Session, pinned: PinnedJourney, customer: Customer,
               previous: Callable[[], list[Enrollment]], *, occasion: str | None, at: datetime,
               check_trigger: bool = False, trigger: Event | None = None,
               trigger_event_id: str | None = None) -> Admission:
        """Erasure, the trigger's where, audience, occasion, run key and reentry, from the
        customer's runs of the journey (``previous()``, newest first: one query serves the
        occasion and reentry checks); an allowed admission carries its enrollment, not
        added to the session yet."""
        journey = pinned.journey
        if customer.phone_status == "erased":  # a late event for an erased person starts nothing
            return Admission(False, "customer erased")
        where = getattr(journey.trigger, "where", None) if check_trigger else None
        if where or journey.audience:
            context = expression_context(session, self.catalog, customer, at, trigger=trigger, event=trigger,
                                         reads=_reads(where, journey.audience))
            if where and not self._holds(where, context, journey.id):
                return Admission(False, "trigger where is false")
            if journey.audience and not self._holds(journey.audience, context, journey.id):
                return Admission(False, "not in audience")
        runs = previous()
        if occasion and any(run.occasion == occasion for run in runs):
            return Admission(False, "occasion already entered")
        key_hash = None
        if journey.run_key is not None and trigger is not None:
            key = key_of(journey, trigger)
            if key.problem:
                return Admission(False, key.problem)
            key_hash = key.hash
        refusal, active = self._reentry_refusal(journey, runs, at, key_hash)
        if refusal:
            return Admission(False, refusal, active=active,
                             refused_event_type=trigger.type if trigger is not None else None)
        run = Enrollment(id=uuid.uuid4().hex, journey_id=journey.id, journey_version=pinned.version,
                         customer_id=customer.id, workflow_id=workflow_id(journey.id, customer.id, key_hash),
                         run_key=key_hash, trigger_event_id=trigger_event_id,
                         occasion=occasion or trigger_event_id, entered_at=at)
        return Admission(True, enrollment=run)

    def _keep_version(self, session: Session, pinned: PinnedJourney, now: datetime) -> None:
        """The journey version's row, once per process (see ``versions_kept``)."""
        if (pinned.journey.id, pinned.version) not in self.versions_kept:
            insert_ignoring_duplicates(session, JourneyVersion, {
                "journey_id": pinned.journey.id, "version": pinned.version, "first_seen_at": now,
                "definition": pinned.journey.model_dump(mode="json", by_alias=True)})

    @staticmethod
    def _holds(expression: str, context: dict[str, Any], journey_id: str) -> bool:
        try:
            return is_true(expression, context)
        except ExpressionError as err:  # the kind, never the message: it may quote customer data
            log.warning("entry condition of %s failed to evaluate (%s); not entering", journey_id, err.kind)
            return False

    @staticmethod
    def _reentry_refusal(journey: Journey, previous: list[Enrollment], at: Any,
                         key_hash: str | None = None) -> tuple[str | None, Enrollment | None]:
        """Why the customer may not enter now (or None), and their active run of this key
        (None: unkeyed) if any, from their runs of the journey, newest first. Reentry counts
        every run of the customer, whatever its key."""
        active = next((run for run in previous if run.status == "active" and run.run_key == key_hash), None)
        if active is not None:
            return "already in this journey", active
        if not previous or journey.reentry == "always":
            return None, None
        if journey.reentry == "never":
            return "reentry: never", None
        assert isinstance(journey.reentry, timedelta)
        if previous[0].entered_at > at - journey.reentry:
            return "reentry window not over", None
        return None, None
