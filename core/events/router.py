"""The one path every event takes, whoever sends it (HTTP API, CLI, starter.py,
simulations, journeys' own `emit` steps, segment changes):

1. store it, once per event id (a repeat is accepted and does nothing again);
2. update the customer's derived data (orders, spend, points, tier);
3. record goal conversions of recent journey runs;
4. signal the customer's running journeys (exits, waits, replies, clicks);
5. start the journeys it triggers (trigger + where + audience + reentry);
6. re-evaluate, for that customer, the rule segments that read what it changed, and
   route their ``segment_entered`` / ``segment_exited`` at once (core.segments.immediate).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core.clock import utcnow
from core.event import EventIn, RouteResult
from core.events.grouping import PlainGroups
from core.events.store import NOT_PLAIN, EventStore, Plain, Stored
from core.journeys import admission, enrollment
from core.segments import immediate
from language.catalog import Catalog
from store.db import Database, session_scope
from store.tables import Enrollment, Event
from workflows.io import EVENT_SIGNAL, EventSignal

log = logging.getLogger(__name__)


class EventRouter:
    """Routes events for one catalog, one database and one Temporal client."""

    def __init__(self, catalog: Catalog, db: Database, client: Client, *, simulated: bool = False,
                 clock_offset_seconds: float = 0.0) -> None:
        # Told (source, receipt-to-routed lag) of each event this router finishes: a worker's metrics.
        self.on_routed: Callable[[str, timedelta], None] | None = None
        self.catalog = catalog
        self.db = db
        self.client = client
        self.store = EventStore(catalog, db)
        self._plain_groups = PlainGroups(self.store.store_plain_many)
        self.simulated = simulated
        self.starter = enrollment.Starter(catalog, db, client, simulated=simulated,
                                          clock_offset_seconds=clock_offset_seconds)

    async def route(self, event: EventIn, *, source: str = "api", origin: str | None = None) -> RouteResult:
        """``origin``: the enrollment whose step caused this event. It is not signalled:
        a run knows what it did, and a signal to itself would land mid-task."""
        changed = immediate.changes_of(event, source)
        quiet = self._quiet(event, changed)
        stored: Stored | Plain | None = NOT_PLAIN
        if self.store.is_plain(event, quiet):  # with other callers' plain events: one transaction
            stored = await self._plain_groups.store(event, source)
        if stored is NOT_PLAIN:
            stored = await asyncio.to_thread(self.store.store_full, event, source, quiet)
        return await self._finish(event, stored, changed, source, origin)

    async def route_many(self, events: Sequence[EventIn], *, source: str = "api") -> list[RouteResult]:
        """``route`` each, in order, with the same outcome; a run of consecutive events that
        take the store's plain path is stored in one transaction of three statements (none
        of them starts a run, so storing them together changes nothing for the others)."""
        results: list[RouteResult] = []
        while len(results) < len(events):
            plain = list(itertools.takewhile(lambda event: self._plain(event, source), events[len(results):]))
            if len(plain) < 2:
                results.append(await self.route(events[len(results)], source=source))
                continue
            stored = await asyncio.to_thread(self.store.store_plain_many, plain, source)
            for event, outcome in zip(plain, stored, strict=True):
                if outcome is NOT_PLAIN:
                    outcome = await asyncio.to_thread(self.store.store_full, event, source, True)
                results.append(await self._finish(event, outcome, immediate.changes_of(event, source), source, None))
        return results

    def _quiet(self, event: EventIn, changed: frozenset[str]) -> bool:
        """Nothing for this event to start or re-evaluate: unless it has listeners or
        follow-ups, the store marks it routed in its own transaction."""
        return not immediate.may_move(self.catalog, changed) and not any(
            admission.triggers(pinned.journey, event.type, event.properties or {})
            for pinned in self.catalog.journeys.values())

    def _plain(self, event: EventIn, source: str) -> bool:
        return self.store.is_plain(event, self._quiet(event, immediate.changes_of(event, source)))

    async def _finish(self, event: EventIn, stored: Stored | None, changed: frozenset[str], source: str,
                      origin: str | None) -> RouteResult:
        """Steps 4-6 of a stored event, then marked routed (unless the store did)."""
        result = RouteResult(event_id=event.id)
        if stored is None:
            result.duplicate = True
            return result
        if stored.routed is not None:
            if self.on_routed is not None:
                self.on_routed(source, stored.routed)
            return result
        if stored.resumed:
            kept = await asyncio.to_thread(self._stored_event, event.id)
            event = kept or event
        signal = EventSignal(event_id=event.id, type=event.type)
        for run in stored.running:
            if run.id != origin and await self._signal(run, signal):
                result.signalled.append(run.journey_id)
        for pinned in self.catalog.journeys.values():
            entry = await self.starter.maybe_enter(pinned, event.customer_id, event.id, event.type,
                                                   event.properties or {})
            if entry is not None and entry.started:
                result.started.append(pinned.journey.id)
            elif entry is not None:
                result.refused[pinned.journey.id] = entry.reason
        for follow_up in stored.derived:
            await self.route(follow_up, source="engine", origin=origin)
            result.follow_ups.append(follow_up.type)
        if changed:  # the customer's data changed: their segments, now (a retry re-does it: idempotent)
            # As of now; a simulation's clock is its events' (its "now" runs ahead of the wall clock).
            at = (event.occurred_at or utcnow()) if self.simulated else utcnow()
            await immediate.reevaluate(self, event.customer_id, changed, cause=event.id, at=at)
        # Only now is the event done: a failure above leaves it for a retry or the sweeper.
        lag = await asyncio.to_thread(self.store.mark_routed, event.id)
        if lag is not None and self.on_routed is not None:
            self.on_routed(source, lag)
        return result

    def _stored_event(self, event_id: str) -> EventIn | None:
        with session_scope(self.db, readonly=True) as session:
            row = session.get(Event, event_id)
            return None if row is None else EventIn(id=row.id, type=row.type, customer_id=row.customer_id,
                                                    occurred_at=row.occurred_at, properties=row.properties)

    async def sweep(self, older_than: timedelta = timedelta(minutes=1), page_size: int = 200) -> int:
        """Finish routing events stored but never routed, page by page through the whole
        outbox (events that keep failing never hide the ones behind them); returns how many."""
        routed, cursor = 0, None
        while True:
            pending, cursor = await asyncio.to_thread(self.store.unrouted, older_than, page_size, cursor)
            for event in pending:
                try:
                    await self.route(event, source="sweeper")
                    routed += 1
                except Exception:  # one event that cannot be routed must not hold back the others
                    log.exception("event %s could not be routed; it stays in the outbox", event.id)
            if cursor is None:
                return routed

    # --- 4: signals ---------------------------------------------------------------------

    async def _signal(self, run: Enrollment, signal: EventSignal) -> bool:
        for _ in range(2):
            try:
                await self.client.get_workflow_handle(run.workflow_id).signal(EVENT_SIGNAL, signal)
                return True
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
            # No running workflow: a half-made entry (start it, then signal it), or a run
            # that ended without the database hearing (close its row).
            if await self.starter.settle_run(run) == "ended":
                return False
        return False


