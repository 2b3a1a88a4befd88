"""Decisions: conditions, local times, and whether an event concerns the run.
They read the customer fresh and write nothing, so retries are harmless."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, SQLModel, col
from temporalio import activity

from activities.deps import Deps, moment, run_key
from core.clock import utcnow
from core.customers.context import expression_context
from core.customers.records import get_customer
from core.sms.zones import send_zones
from language.expressions import ExpressionError, customer_reads, is_true
from language.models import Expect
from store.db import session_scope
from store.tables import ConsentRecord, Customer, Decision, Event
from workflows import activity_names as names
from workflows.contracts import EvaluateInput, EventMatch, InspectEventInput, NextLocalTimeInput, StepCall

DECISIONS = SQLModel.metadata.tables[Decision.__tablename__]
# Events whose match reads their properties (the run and step a click or a reply answers, a
# reply's text): properties can change (retention anonymises them), so those answers are remembered.
_READ_BY_PROPERTIES = frozenset({"link_clicked", "sms_replied"})
_INTEGER = re.compile(r"^\D*?(-?\d+)\D*$")
log = logging.getLogger(__name__)


def holds(expression: str, context: dict[str, Any], journey_id: str, step: str) -> tuple[bool, str | None]:
    """Whether the condition holds, and why not if it failed. A failing condition counts as
    false, like a comparison with ``none``: it is the journey's fault, a retry cannot help.
    The log line says where and what kind of failure, never the values (the error's own
    message may quote the customer's data)."""
    try:
        return is_true(expression, context), None
    except ExpressionError as err:
        log.warning("journey %s, step %s: the condition failed (%s) and counts as false", journey_id, step, err.kind)
        return False, err.kind


def parse_answer(text: str, expect: Expect) -> tuple[bool, Any]:
    """Whether a reply answers the question, and its value."""
    reply = " ".join(text.split())
    if expect.type == "integer":
        found = _INTEGER.match(reply)
        if not found:
            return False, None
        value = int(found.group(1))
        if (expect.min is not None and value < expect.min) or (expect.max is not None and value > expect.max):
            return False, None
        return True, value
    if expect.type == "choice":
        for choice in expect.choices or []:
            if reply.casefold() == choice.casefold():
                return True, choice
        return False, None
    return (bool(reply), reply or None)


def remembered(db: Any, key: str, decide: Callable[[Session], dict[str, Any]]) -> dict[str, Any]:
    """The first answer ever given under ``key``.

    Local activities run again when a workflow task is replayed before it completed:
    by then the customer may have changed, and a fresh answer could take another branch
    than the effects already written. Remembered answers keep every replay on course.
    Two transactions: decide in a read-only session (no write lock while the customer is
    read), then keep the answer; the insert meets any earlier answer (a replay's, or a
    concurrent first one), and that answer stands. No look first: a first answer, the
    common case, costs one statement less; a replay decides again for nothing. A replay
    whose decision fails (the customer erased since) gets the first answer all the same.
    """
    try:
        with session_scope(db, readonly=True) as session:
            value = decide(session)
    except Exception:
        with session_scope(db, readonly=True) as session:
            earlier = _stored_answer(session, key)
        if earlier is None:
            raise
        return earlier
    with session_scope(db) as session:
        kept = session.execute(_insert(session)(DECISIONS).values(key=key, value=value, decided_at=utcnow())
                               .on_conflict_do_nothing().returning(DECISIONS.c.key)).first()
        if kept is None:  # decided before: that answer stands
            stored = _stored_answer(session, key)
            assert stored is not None  # the insert met it
            return stored
    return value


def _stored_answer(session: Session, key: str) -> dict[str, Any] | None:
    return session.execute(select(DECISIONS.c.value).where(DECISIONS.c.key == key)).scalar_one_or_none()


def _insert(session: Session) -> Any:
    return postgres_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def preferred_channel(session: Session, customer: Customer) -> str:
    """The channel of the customer's most recent opt-in among those still opted in ("sms" or
    "email"), or "" when neither is: what they chose last is what they prefer. Email only when
    its opt-in is strictly newer: a tie (both at signup) or no evidence keeps the text first."""
    current = [channel for channel, consent in (("sms", customer.sms_consent), ("email", customer.email_consent))
               if consent == "opted_in"]
    if len(current) < 2:
        return current[0] if current else ""

    def newest(channel: str) -> datetime | None:
        return session.execute(select(func.max(col(ConsentRecord.occurred_at))).where(
            col(ConsentRecord.customer_id) == customer.id, col(ConsentRecord.channel) == channel,
            col(ConsentRecord.status) == "opted_in")).scalar_one()

    sms, email = newest("sms"), newest("email")
    return "email" if email is not None and (sms is None or email > sms) else "sms"


class DecisionActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=names.EVALUATE)
    def evaluate(self, input: EvaluateInput) -> bool:
        def decide(session: Session) -> dict[str, Any]:
            at = moment(input)
            customer = get_customer(session, input.run.customer_id)
            trigger = session.get(Event, input.run.trigger_event_id) if input.run.trigger_event_id else None
            context = expression_context(session, self.deps.catalog, customer, at, trigger=trigger,
                                         run=input.run, facts=input.facts,
                                         reads=customer_reads(input.expression, template=False))
            result, error = holds(input.expression, context, input.run.journey_id, input.step_key)
            return {"result": result, "error": error} if error else {"result": result}

        return bool(remembered(self.deps.db, f"{run_key(input)}:condition", decide)["result"])

    @activity.defn(name=names.PREFERRED_CHANNEL)
    def preferred_channel(self, input: StepCall) -> str:
        def decide(session: Session) -> dict[str, Any]:
            return {"channel": preferred_channel(session, get_customer(session, input.run.customer_id))}

        return str(remembered(self.deps.db, f"{run_key(input)}:channel", decide)["channel"])

    @activity.defn(name=names.NEXT_LOCAL_TIME)
    def next_local_time(self, input: NextLocalTimeInput) -> datetime:
        def decide(session: Session) -> dict[str, Any]:
            return {"until": self._next_local_time(session, input).isoformat()}

        return datetime.fromisoformat(remembered(self.deps.db, f"{run_key(input)}:until", decide)["until"])

    def _next_local_time(self, session: Session, input: NextLocalTimeInput) -> datetime:
        at = moment(input)
        customer = get_customer(session, input.run.customer_id)
        # The recipient's clock, as for quiet hours; a number across zones: its fallback zone.
        zones = send_zones(customer, self.deps.catalog.settings.default_timezone)
        zone = zones.fallback or zones.zones[0]
        hours, minutes = (int(part) for part in input.time_of_day.split(":"))
        local = at.astimezone(zone)
        target = local.replace(hour=hours, minute=minutes, second=0, microsecond=0)
        if target <= local:
            target = (local + timedelta(days=1)).replace(hour=hours, minute=minutes, second=0, microsecond=0)
        return target

    @activity.defn(name=names.INSPECT_EVENT)
    def inspect_event(self, input: InspectEventInput) -> EventMatch:
        event = None
        if input.where is None and input.expect is None:
            with session_scope(self.deps.db, readonly=True) as session:
                event = session.get(Event, input.event_id)
            if event is not None and event.type not in _READ_BY_PROPERTIES:
                # Whose event it is: the one thing this answer depends on, and an event's
                # customer never changes while the row exists (retention keeps it; erasure
                # ends the runs). Asked again, it answers the same: nothing to remember.
                return EventMatch(matched=event.customer_id == input.run.customer_id)
        question = hashlib.sha256(f"{input.where}|{input.expect and input.expect.model_dump_json()}".encode())
        key = f"{input.run.enrollment_id}:{input.event_id}:{question.hexdigest()[:12]}"
        value = remembered(self.deps.db, key,
                           lambda session: self._inspect(session, input, event).model_dump(mode="json"))
        return EventMatch.model_validate(value)

    def _inspect(self, session: Session, input: InspectEventInput, loaded: Event | None = None) -> EventMatch:
        """``loaded``: the event, read already (its row does not change)."""
        at = moment(input)
        event = loaded or session.get(Event, input.event_id)
        if event is None or event.customer_id != input.run.customer_id:
            return EventMatch(matched=False)
        props = event.properties or {}
        match = EventMatch(matched=True)
        if event.type == "link_clicked":
            if props.get("enrollment_id") != input.run.enrollment_id:
                return EventMatch(matched=False)
            match.step = props.get("step")
        if event.type == "sms_replied":
            reply_to = props.get("reply_to") or {}
            if reply_to.get("enrollment_id") != input.run.enrollment_id:
                return EventMatch(matched=False)
            match.reply_to = reply_to.get("step")
            if input.expect is not None:
                match.valid_answer, match.answer = parse_answer(str(props.get("body", "")), input.expect)
                if input.expect.type == "text" and match.valid_answer:
                    match.answer, match.answer_event_id = None, event.id
        if input.where:
            customer = get_customer(session, input.run.customer_id)
            trigger = session.get(Event, input.run.trigger_event_id) if input.run.trigger_event_id else None
            context = expression_context(session, self.deps.catalog, customer, at, trigger=trigger,
                                         event=event, run=input.run, facts=input.facts,
                                         reads=customer_reads(input.where, template=False))
            match.matched, _ = holds(input.where, context, input.run.journey_id, input.step_key)
        return match
