"""Steps 1-3 of the event path (see core.events.router): store an event once per id,
derive the customer's data from it, record goal conversions, in one transaction."""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, bindparam
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, and_, col, or_, select

from core.clock import utcnow
from core.customers.context import expression_context
from core.customers.purchases import record_purchase
from core.customers.records import ensure_customer
from core.event import EventIn
from core.journeys.run_keys import reaches
from core.loyalty import rules as loyalty_rules
from core.validation import purchase_amount
from language.catalog import Catalog
from language.expressions import ExpressionError, evaluate
from language.interests import listens_to
from language.models import Journey
from store.db import Database, session_scope
from store.tables import Customer, Enrollment, Event, JourneyVersion

log = logging.getLogger(__name__)

OutboxCursor = tuple[datetime, str]  # (received_at, id) of the last event of a page


class Plain(enum.Enum):
    NOT_PLAIN = "not plain"  # the plain path does not apply: take the full one


NOT_PLAIN = Plain.NOT_PLAIN


# The event path's hot statements, built once: a statement built per call costs more CPU
# (coercion, cache keys) than its round trip to the database.
_EVENTS = Event.__table__  # type: ignore[attr-defined]
_CUSTOMERS = Customer.__table__  # type: ignore[attr-defined]
_CUSTOMERS_KNOWN = select(_CUSTOMERS.c.id).where(_CUSTOMERS.c.id.in_(bindparam("ids", expanding=True)))
_ACTIVE_RUNS = select(Enrollment).where(Enrollment.customer_id == bindparam("customer_id"),
                                       Enrollment.status == "active")
_ACTIVE_RUNS_OF = select(Enrollment).where(col(Enrollment.customer_id).in_(bindparam("ids", expanding=True)),
                                          Enrollment.status == "active")
# INSERT the event unless its id is stored (the primary key decides, even against a
# concurrent store of the same id); RETURNING says which.
_INSERT_NEW: dict[str, Insert] = {
    name: insert(_EVENTS).on_conflict_do_nothing(index_elements=["id"]).returning(_EVENTS.c.id)
    for name, insert in (("postgresql", postgresql_insert), ("sqlite", sqlite_insert))}


@dataclass
class Stored:
    running: list[Enrollment]
    derived: list[EventIn]
    resumed: bool = False  # routing a stored event that was never routed
    routed: timedelta | None = None  # routed in the same transaction (nothing else to do): after its receipt


class EventStore:
    """Steps 1-3, in one transaction: store the event once, derive, record goals."""

    def __init__(self, catalog: Catalog, db: Database) -> None:
        self.catalog = catalog
        self.db = db
        # (journey, version) -> its definition and the event types its runs listen to; versions never change.
        self._journeys: dict[tuple[str, str], Journey | None] = {
            (p.journey.id, p.version): p.journey for p in catalog.journeys.values()}
        self._interests: dict[tuple[str, str], frozenset[str]] = {
            (p.journey.id, p.version): listens_to(p.journey) for p in catalog.journeys.values()}
        # Event types with effects of their own: loyalty follow-ups, a customer's derived
        # data, goal conversions. Any other quiet event takes the plain path.
        self._deriving = frozenset({"purchase", loyalty_rules.REVERSAL_EVENT}) | {
            p.journey.goal.event for p in catalog.journeys.values() if p.journey.goal is not None}

    def _journey(self, session: Session, run: Enrollment) -> Journey | None:
        key = (run.journey_id, run.journey_version)
        if key not in self._journeys:
            version = session.get(JourneyVersion, key)
            self._journeys[key] = Journey.model_validate(version.definition) if version else None
        return self._journeys[key]

    def _listening(self, session: Session, run: Enrollment, event: Event) -> bool:
        key = (run.journey_id, run.journey_version)
        journey = self._journey(session, run)
        if key not in self._interests:  # unknown: signal rather than miss
            self._interests[key] = listens_to(journey) if journey else frozenset({event.type})
        if event.type not in self._interests[key]:
            return False
        return journey is None or reaches(journey, run.run_key, event)

    def store(self, event: EventIn, source: str, quiet: bool = False) -> Stored | None:
        """``quiet``: the event starts and re-evaluates nothing; with no listening runs and no
        follow-ups there is nothing left to route, and it is marked routed here."""
        if self.is_plain(event, quiet):
            plain = self.store_plain_many([event], source)[0]
            if plain is not NOT_PLAIN:
                return plain
        return self.store_full(event, source, quiet)

    def store_full(self, event: EventIn, source: str, quiet: bool = False) -> Stored | None:
        """``store`` by the full path (the ORM, the customer made if new, loaded and locked)."""
        now = utcnow()
        at = event.occurred_at or now
        try:
            with session_scope(self.db) as session:
                existing = session.get(Event, event.id)
                if existing is not None:
                    # Seen before. Routed: a true duplicate. Stored but never routed (Temporal
                    # was down, the process died): hand it back to finish the routing.
                    return None if existing.routed_at else Stored(self._running(session, existing), [], resumed=True)
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
                running = self._running(session, row)
                if quiet and not running and not derived:
                    row.routed_at = utcnow()
                    return Stored(running=[], derived=[], routed=row.routed_at - now)
                return Stored(running=running, derived=derived)
        except IntegrityError:
            # The same event id stored concurrently is a duplicate; any other conflict is a bug.
            with session_scope(self.db, readonly=True) as session:
                if session.get(Event, event.id) is not None:
                    return None
            raise

    def is_plain(self, event: EventIn, quiet: bool) -> bool:
        """Whether the plain path may take it (its customer existing is checked there)."""
        return quiet and event.type not in self._deriving

    def store_plain_many(self, events: Sequence[EventIn], source: str) -> list[Stored | Plain | None]:
        """``store(event, source, quiet=True)`` of events that each may take the plain path
        (``is_plain``), in one transaction of three statements whatever their number (a
        fourth looks up those seen before); per event, in order: what ``store`` returns, or
        ``NOT_PLAIN`` (take ``store_full``).

        The plain path: events that start, re-evaluate and derive nothing, for customers
        who exist (``NOT_PLAIN`` otherwise: the full path makes the customer); core SQL, no
        customer row loaded or locked (nothing of it is read or changed), a repeat found by
        the insert itself, and an event stored already routed when no run listens. The
        full path takes five statements for each event."""
        now = utcnow()
        outcomes: list[Stored | Plain | None] = [NOT_PLAIN] * len(events)
        with session_scope(self.db) as session:
            connection = session.connection()
            customer_ids = sorted({event.customer_id for event in events})
            known = set(connection.execute(_CUSTOMERS_KNOWN, {"ids": customer_ids}).scalars())
            if not known:
                return outcomes
            runs: dict[str, list[Enrollment]] = {}
            for run in session.exec(_ACTIVE_RUNS_OF, params={"ids": sorted(known)}).all():
                runs.setdefault(run.customer_id, []).append(run)
            routed_at = utcnow()
            batch: dict[str, tuple[int, list[Enrollment]]] = {}  # event id -> (its place, the runs it signals)
            rows = []
            for place, event in enumerate(events):
                if event.customer_id not in known or event.id in batch:  # a repeat within the batch: after it
                    continue
                at = event.occurred_at or now
                row = Event(id=event.id, customer_id=event.customer_id, type=event.type, occurred_at=at,
                            received_at=now, properties=event.properties, source=source)
                running = [run for run in runs.get(event.customer_id, []) if self._listening(session, run, row)]
                batch[event.id] = (place, running)
                rows.append({"id": event.id, "customer_id": event.customer_id, "type": event.type,
                             "occurred_at": at, "received_at": now, "properties": event.properties,
                             "source": source, "routed_at": None if running else routed_at})
            if not rows:
                return outcomes
            inserted = set(connection.execute(_INSERT_NEW[connection.dialect.name], rows).scalars())
            seen = [event_id for event_id in batch if event_id not in inserted]
            for event_id, (place, running) in batch.items():
                if event_id in inserted:
                    outcomes[place] = (Stored(running=running, derived=[]) if running else
                                       Stored(running=[], derived=[], routed=routed_at - now))
            # Seen before: a duplicate, or stored and never routed (finish it).
            for existing in session.exec(select(Event).where(col(Event.id).in_(seen))).all() if seen else []:
                outcomes[batch[existing.id][0]] = (None if existing.routed_at else
                                                   Stored(self._running(session, existing), [], resumed=True))
        return outcomes

    def _running(self, session: Session, event: Event) -> list[Enrollment]:
        return [run for run in session.exec(_ACTIVE_RUNS, params={"customer_id": event.customer_id}).all()
                if self._listening(session, run, event)]

    def mark_routed(self, event_id: str) -> timedelta | None:
        """Mark it routed; returns how long after its receipt (None: it was already)."""
        with session_scope(self.db) as session:
            row = session.get(Event, event_id)
            if row is not None and row.routed_at is None:
                row.routed_at = utcnow()
                session.add(row)
                return row.routed_at - row.received_at
            return None

    def unrouted(self, older_than: timedelta, limit: int = 200,
                 after: OutboxCursor | None = None) -> tuple[list[EventIn], OutboxCursor | None]:
        """A page of the events stored but never routed, oldest first, from after ``after``;
        and the cursor of the next page (None after the last)."""
        query = select(Event).where(col(Event.routed_at).is_(None), col(Event.received_at) < utcnow() - older_than)
        if after is not None:
            at, last_id = after
            query = query.where(or_(col(Event.received_at) > at,
                                    and_(col(Event.received_at) == at, col(Event.id) > last_id)))
        with session_scope(self.db, readonly=True) as session:
            rows = session.exec(query.order_by(col(Event.received_at), col(Event.id)).limit(limit)).all()
            events = [EventIn(id=r.id, type=r.type, customer_id=r.customer_id, occurred_at=r.occurred_at,
                              properties=r.properties) for r in rows]
            return events, ((rows[-1].received_at, rows[-1].id) if len(rows) == limit else None)

    def _derive(self, session: Session, customer: Customer, event: Event) -> list[EventIn]:
        if event.type == loyalty_rules.REVERSAL_EVENT:  # a refund or cancellation: points back
            return loyalty_rules.on_reversal(session, self.catalog.loyalty, customer, event)
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
        record_purchase(session, event, amount)  # for windows and line items: customer.orders_in('90d')
        # Points, punch card, referral, coupon redemption, tier: see core/loyalty/rules.py.
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
                run.conversion_value = self._goal_value(session, customer, event, goal.value, pinned.journey.id)
                session.add(run)

    def _goal_value(self, session: Session, customer: Customer, event: Event, expr: str | None,
                    pinned_id: str) -> float | None:
        if not expr:
            return None
        try:
            value = evaluate(expr, expression_context(session, self.catalog, customer, event.occurred_at,
                                                      event=event))
            number = float(value) if value is not None else None
        except ExpressionError as err:
            # Where and what kind, never the event id or the values: either may carry customer data.
            log.warning("goal value of journey %s could not be computed (%s)", pinned_id, err.kind)
            return None
        except (TypeError, ValueError, ArithmeticError) as err:  # not a number (or too big for one)
            log.warning("goal value of journey %s is not a number (%s)", pinned_id, type(err).__name__)
            return None
        return number if number is None or math.isfinite(number) else None


def _amount(properties: dict[str, Any]) -> float:
    """A purchase's `amount` (validated on the way in); 0 when it has none."""
    try:
        return purchase_amount(properties["amount"]) if properties.get("amount") is not None else 0.0
    except ValueError:
        return 0.0
