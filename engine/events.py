"""The one path every event takes, whoever sends it (HTTP API, CLI, starter.py,
simulations, journeys' own `emit` steps, segment changes):

1. store it, once per event id (a repeat is accepted and does nothing again);
2. update the customer's derived data (orders, spend, points, tier);
3. record goal conversions of recent journey runs;
4. signal the customer's running journeys (exits, waits, replies, clicks);
5. start the journeys it triggers (trigger + where + audience + reentry).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, ValidationInfo, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from engine import enrollment, loyalty_rules
from engine.context import expression_context
from engine.customers import ensure_customer, utcnow
from engine.validation import CustomerId, no_nul, purchase_amount, require_timezone
from language.catalog import Catalog
from language.expressions import ExpressionError, evaluate
from language.interests import listens_to
from language.models import Journey
from store.db import session_scope
from store.tables import Customer, Enrollment, Event, JourneyVersion
from workflows.io import EVENT_SIGNAL, EventSignal

log = logging.getLogger(__name__)

class EventIn(BaseModel):
    """An event as a shop service sends it."""

    id: Annotated[str, AfterValidator(no_nul)] = Field(min_length=1, max_length=128,
                                                       description="Unique per event; repeats are ignored")
    type: str = Field(pattern=r"^[a-z0-9_]+$", max_length=64)
    customer_id: CustomerId
    occurred_at: Annotated[datetime | None, AfterValidator(require_timezone)] = None
    properties: Annotated[dict[str, Any], AfterValidator(no_nul)] = Field(default_factory=dict)

    @field_validator("properties")
    @classmethod
    def _purchase_amount(cls, properties: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # The loyalty program computes with it: refuse what it cannot (inf, nan, absurd).
        if info.data.get("type") == "purchase" and properties.get("amount") is not None:
            purchase_amount(properties["amount"])
        return properties


@dataclass
class RouteResult:
    event_id: str
    duplicate: bool = False
    signalled: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    follow_ups: list[str] = field(default_factory=list)


@dataclass
class _Stored:
    running: list[Enrollment]
    derived: list[EventIn]
    resumed: bool = False  # routing a stored event that was never routed


class EventStore:
    """Steps 1-3, in one transaction: store the event once, derive, record goals."""

    def __init__(self, catalog: Catalog, engine: Any) -> None:
        self.catalog = catalog
        self.engine = engine
        # (journey, version) -> the event types its runs listen to; versions never change.
        self._interests: dict[tuple[str, str], frozenset[str]] = {
            (p.journey.id, p.version): listens_to(p.journey) for p in catalog.journeys.values()}

    def _listening(self, session: Session, run: Enrollment, event_type: str) -> bool:
        key = (run.journey_id, run.journey_version)
        if key not in self._interests:
            version = session.get(JourneyVersion, key)
            self._interests[key] = (listens_to(Journey.model_validate(version.definition)) if version
                                    else frozenset({event_type}))  # unknown: signal rather than miss
        return event_type in self._interests[key]

    def store(self, event: EventIn, source: str) -> _Stored | None:
        now = utcnow()
        at = event.occurred_at or now
        try:
            with session_scope(self.engine) as session:
                existing = session.get(Event, event.id)
                if existing is not None:
                    # Seen before. Routed: a true duplicate. Stored but never routed (Temporal
                    # was down, the process died): hand it back to finish the routing.
                    return None if existing.routed_at else _Stored(self._running(session, existing), [], resumed=True)
                customer = ensure_customer(session, event.customer_id, now, for_update=True)
                row = Event(id=event.id, customer_id=event.customer_id, type=event.type, occurred_at=at,
                            received_at=now, properties=event.properties, source=source)
                session.add(row)
                session.flush()
                derived = self._derive(session, customer, row)
                for follow_up in derived:  # in the same transaction as their cause (an outbox)
                    if session.get(Event, follow_up.id) is None:
                        follow_row = Event(id=follow_up.id, customer_id=follow_up.customer_id, type=follow_up.type,
                                           occurred_at=follow_up.occurred_at or now, received_at=now,
                                           properties=follow_up.properties, source="engine")
                        session.add(follow_row)
                        self._record_goals(session, customer, follow_row)
                self._record_goals(session, customer, row)
                return _Stored(running=self._running(session, row), derived=derived)
        except IntegrityError:
            # The same event id stored concurrently is a duplicate; any other conflict is a bug.
            with session_scope(self.engine, readonly=True) as session:
                if session.get(Event, event.id) is not None:
                    return None
            raise

    def _running(self, session: Session, event: Event) -> list[Enrollment]:
        return [run for run in session.exec(
            select(Enrollment).where(Enrollment.customer_id == event.customer_id, Enrollment.status == "active")
        ).all() if self._listening(session, run, event.type)]

    def mark_routed(self, event_id: str) -> None:
        with session_scope(self.engine) as session:
            row = session.get(Event, event_id)
            if row is not None and row.routed_at is None:
                row.routed_at = utcnow()
                session.add(row)

    def unrouted(self, older_than: timedelta, limit: int = 200) -> list[EventIn]:
        """Events stored but never routed, oldest first (for the outbox sweeper)."""
        with session_scope(self.engine, readonly=True) as session:
            rows = session.exec(select(Event).where(col(Event.routed_at).is_(None),
                                                    col(Event.received_at) < utcnow() - older_than)
                                 .order_by(col(Event.received_at)).limit(limit)).all()
            return [EventIn(id=r.id, type=r.type, customer_id=r.customer_id, occurred_at=r.occurred_at,
                            properties=r.properties) for r in rows]

    def _derive(self, session: Session, customer: Customer, event: Event) -> list[EventIn]:
        if event.type != "purchase":
            return []
        amount = _amount(event.properties)
        customer.orders_count += 1
        customer.total_spent += amount
        if customer.first_purchase_at is None or event.occurred_at < customer.first_purchase_at:
            customer.first_purchase_at = event.occurred_at
        if customer.last_purchase_at is None or event.occurred_at > customer.last_purchase_at:
            customer.last_purchase_at = event.occurred_at
        customer.updated_at = utcnow()
        # Points, punch card, referral, coupon redemption, tier: see engine/loyalty_rules.py.
        return loyalty_rules.on_purchase(session, self.catalog.loyalty, customer, event, amount)

    def _record_goals(self, session: Session, customer: Customer, event: Event) -> None:
        for pinned in self.catalog.journeys.values():
            goal = pinned.journey.goal
            if goal is None or goal.event != event.type:
                continue
            runs = session.exec(select(Enrollment).where(
                Enrollment.customer_id == customer.id, Enrollment.journey_id == pinned.journey.id,
                Enrollment.converted_at.is_(None),  # type: ignore[union-attr]
            )).all()
            for run in runs:
                # From the run's last message; a run that sent nothing (a holdout) counts
                # from its entry, so holdouts and variants can be compared on goals.
                since = run.last_message_at or run.entered_at
                if not (since <= event.occurred_at <= since + goal.within):
                    continue
                run.converted_at = event.occurred_at
                run.conversion_value = self._goal_value(session, customer, event, goal.value)
                session.add(run)

    def _goal_value(self, session: Session, customer: Customer, event: Event, expr: str | None) -> float | None:
        if not expr:
            return None
        try:
            value = evaluate(expr, expression_context(session, self.catalog, customer, event.occurred_at,
                                                      event=event))
            return float(value) if value is not None else None
        except (ExpressionError, TypeError, ValueError):
            log.warning("goal value of event %s could not be computed", event.id)
            return None


class EventRouter:
    """Routes events for one catalog, one database and one Temporal client."""

    def __init__(self, catalog: Catalog, engine: Any, client: Client, *, simulated: bool = False,
                 clock_offset_seconds: float = 0.0) -> None:
        self.catalog = catalog
        self.engine = engine
        self.client = client
        self.store = EventStore(catalog, engine)
        self.starter = enrollment.Starter(catalog, engine, client, simulated=simulated,
                                          clock_offset_seconds=clock_offset_seconds)

    async def route(self, event: EventIn, *, source: str = "api", origin: str | None = None) -> RouteResult:
        """``origin``: the enrollment whose step caused this event. It is not signalled:
        a run knows what it did, and a signal to itself would land mid-task."""
        stored = await asyncio.to_thread(self.store.store, event, source)
        result = RouteResult(event_id=event.id)
        if stored is None:
            result.duplicate = True
            return result
        if stored.resumed:
            event = (await asyncio.to_thread(self._stored_event, event.id)) or event
        signal = EventSignal(event_id=event.id, type=event.type)
        for run in stored.running:
            if run.id != origin and await self._signal(run, signal):
                result.signalled.append(run.journey_id)
        for pinned in self.catalog.journeys.values():
            started = await self.starter.maybe_start(pinned, event.customer_id, event.id, event.type)
            if started:
                result.started.append(pinned.journey.id)
        for follow_up in stored.derived:
            await self.route(follow_up, source="engine", origin=origin)
            result.follow_ups.append(follow_up.type)
        # Only now is the event done: a failure above leaves it for a retry or the sweeper.
        await asyncio.to_thread(self.store.mark_routed, event.id)
        return result

    def _stored_event(self, event_id: str) -> EventIn | None:
        with session_scope(self.engine, readonly=True) as session:
            row = session.get(Event, event_id)
            return None if row is None else EventIn(id=row.id, type=row.type, customer_id=row.customer_id,
                                                    occurred_at=row.occurred_at, properties=row.properties)

    async def sweep(self, older_than: timedelta = timedelta(minutes=1)) -> int:
        """Finish routing events stored but never routed; returns how many."""
        pending = await asyncio.to_thread(self.store.unrouted, older_than)
        routed = 0
        for event in pending:
            try:
                await self.route(event, source="sweeper")
                routed += 1
            except Exception:  # one event that cannot be routed must not hold back the others
                log.exception("event %s could not be routed; it stays in the outbox", event.id)
        return routed

    # --- 4: signals ---------------------------------------------------------------------

    async def _signal(self, run: Enrollment, signal: EventSignal) -> bool:
        try:
            await self.client.get_workflow_handle(run.workflow_id).signal(EVENT_SIGNAL, signal)
            return True
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            # The run is gone (terminated by an operator, or its record lagged): heal.
            await asyncio.to_thread(enrollment.mark_lost, self.engine, run.id)
            return False


def _amount(properties: dict[str, Any]) -> float:
    """A purchase's `amount` (validated on the way in); 0 when it has none."""
    try:
        return purchase_amount(properties["amount"]) if properties.get("amount") is not None else 0.0
    except ValueError:
        return 0.0
