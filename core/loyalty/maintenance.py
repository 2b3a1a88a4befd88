"""The daily loyalty job: what changes with the mere passing of time.

Points lapse at their ``expires_at`` and earnings leave the 12-month tier window
without any event happening. Balances read fresh (``points_balance``) are always
right, but ``Customer.points`` and ``Customer.tier`` are cached for segment rules and
expressions, so once a day (the ``loyalty-daily`` Temporal Schedule, or ``journeys
loyalty run``) this job, for every customer with ledger entries, page by page:

1. recomputes balance and tier at the job's moment and refreshes the cached values
   that are stale; a tier that changes (a DOWNGRADE, typically: an upgrade happens at
   the purchase or award that causes it) emits ``tier_changed`` {from, to, direction},
   event id ``loyalty:tier:<customer>:<moment>``;
2. emits ``points_expiring`` when points will expire soon: for each customer and each
   expiry DATE (in the customer's time zone, else settings' default_timezone) on or
   before the date ``points.expiry_reminder`` from now, one event with id
   ``points-expiring:<customer>:<YYYY-MM-DD>`` - so however often the job runs, a
   date is announced once. Properties: ``points`` (expiring that date), ``expires_at``
   (the first of those entries' expiry, ISO 8601 in the customer's local time, which
   the shipped points_expiry journey prints with ``| date``), ``expires_on``
   (YYYY-MM-DD) and ``balance`` (now).

With ``expiry_reminder: 14d`` and points expiring on 16 March, the reminder is emitted
by the first run on 2 March (local date), whatever the hour of either.

A reward's spend lapses with the points it took (core/loyalty/rewards.py), so
``points`` is the net of the entries lapsing that date, capped at what the balance will be just before then (deductions
are taken from the soonest-expiring points first). A date with nothing left to lose is
not announced.

Refreshes are committed before their events are routed, so journeys started by
``tier_changed`` see the new tier. A crash between the two loses that one event (the
same at-most-once as the router's own follow-ups); reminders are re-emitted by the next
run until routed, as their ids are per date.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_
from sqlmodel import Session, col, select
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from core.customers.records import customer_zone
from core.event import EventIn, EventPath
from core.loyalty import ledger as loyalty
from language.catalog import Catalog
from store.db import session_scope
from store.tables import Customer, Event, PointsEntry
from workflows.contracts import JOURNEY_TASK_QUEUE
from workflows.loyalty_maintenance import LOYALTY_WORKFLOW, LoyaltyMaintenanceInput

log = logging.getLogger(__name__)

PAGE_SIZE = 500
SOURCE = "loyalty"
SCHEDULE_ID = "loyalty-daily"
SCHEDULE_CRON = "0 3 * * *"  # 03:00 in settings' default_timezone: reminders wait for their journey's hour
CATCHUP = timedelta(days=1)  # a day missed while the system was down still runs, within a day


def loyalty_schedule(catalog: Catalog) -> tuple[str, Schedule]:
    """The daily Temporal Schedule: the LoyaltyMaintenance workflow at 03:00 in
    settings' default_timezone, on the journeys task queue; a run still going when the
    next is due is not doubled (overlap SKIP)."""
    return SCHEDULE_ID, Schedule(
        action=ScheduleActionStartWorkflow(LOYALTY_WORKFLOW, LoyaltyMaintenanceInput(), id=SCHEDULE_ID,
                                           task_queue=JOURNEY_TASK_QUEUE),
        spec=ScheduleSpec(cron_expressions=[SCHEDULE_CRON], time_zone_name=catalog.settings.default_timezone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP),
    )


def loyalty_schedules(catalog: Catalog) -> dict[str, Schedule]:
    """``loyalty_schedule`` as a core.journeys.schedules ScheduleSource."""
    schedule_id, schedule = loyalty_schedule(catalog)
    return {schedule_id: schedule}


@dataclass
class PageResult:
    customers: int = 0  # customers looked at
    refreshed: int = 0  # whose cached points or tier were stale
    tier_changes: int = 0
    reminders: int = 0  # points_expiring events emitted
    next_after: str | None = None  # the last customer id of this page; None when all are done

    def add(self, other: PageResult) -> None:
        self.customers += other.customers
        self.refreshed += other.refreshed
        self.tier_changes += other.tier_changes
        self.reminders += other.reminders
        self.next_after = other.next_after


@dataclass
class _Plan:
    ids: list[str]
    stale: list[str] = field(default_factory=list)
    reminders: list[EventIn] = field(default_factory=list)


async def run_daily(router: EventPath, at: datetime, *, page_size: int = PAGE_SIZE) -> PageResult:
    """The whole job at ``at``, page after page (what ``journeys loyalty run`` does)."""
    total = PageResult()
    after: str | None = None
    while True:
        page = await run_page(router, at, after=after, limit=page_size)
        total.add(page)
        if page.next_after is None:
            return total
        after = page.next_after


async def run_page(router: EventPath, at: datetime, *, after: str | None = None,
                   limit: int = PAGE_SIZE) -> PageResult:
    """One page of customers (ids after ``after``, in id order). Safe to repeat."""
    plan = await asyncio.to_thread(_plan, router.catalog, router.db, at, after, limit)
    changes = await asyncio.to_thread(_refresh, router.catalog, router.db, plan.stale, at)
    for event in changes:
        await router.route(event, source=SOURCE)
    for event in plan.reminders:
        await router.route(event, source=SOURCE)
    return PageResult(customers=len(plan.ids), refreshed=len(plan.stale), tier_changes=len(changes),
                      reminders=len(plan.reminders), next_after=plan.ids[-1] if len(plan.ids) == limit else None)


def _plan(catalog: Catalog, db: Any, at: datetime, after: str | None, limit: int) -> _Plan:
    rules = catalog.loyalty
    with session_scope(db, readonly=True) as session:
        query = select(PointsEntry.customer_id).distinct().order_by(col(PointsEntry.customer_id)).limit(limit)
        if after is not None:
            query = query.where(col(PointsEntry.customer_id) > after)
        ids = list(session.exec(query).all())
        plan = _Plan(ids=ids)
        if not ids:
            return plan
        customers = {c.id: c for c in session.exec(select(Customer).where(col(Customer.id).in_(ids))).all()}
        balances = _balances(session, ids, at)
        for customer_id in ids:
            customer = customers.get(customer_id)
            if customer is None:
                continue  # ledger rows of an erased customer
            balance, earned = balances.get(customer_id, (0, 0))
            if customer.points != balance or customer.tier != loyalty.tier_for(rules, earned):
                plan.stale.append(customer_id)
        if rules.points.expiry_reminder:
            plan.reminders = _reminders(session, catalog, customers, balances, at)
    return plan


def _balances(session: Session, ids: list[str], at: datetime) -> dict[str, tuple[int, int]]:
    """customer id -> (balance at ``at``, points earned in the tier window), in one query."""
    live = and_(col(PointsEntry.occurred_at) <= at,
                or_(col(PointsEntry.expires_at).is_(None), col(PointsEntry.expires_at) > at))
    in_window = and_(col(PointsEntry.points) > 0, col(PointsEntry.occurred_at) > at - loyalty.TIER_WINDOW,
                     col(PointsEntry.occurred_at) <= at)
    rows = session.exec(
        select(PointsEntry.customer_id,
               func.coalesce(func.sum(case((live, PointsEntry.points), else_=0)), 0),
               func.coalesce(func.sum(case((in_window, PointsEntry.points), else_=0)), 0))
        .where(col(PointsEntry.customer_id).in_(ids)).group_by(PointsEntry.customer_id)
    ).all()
    return {customer_id: (int(balance), int(earned)) for customer_id, balance, earned in rows}


def _reminders(session: Session, catalog: Catalog, customers: dict[str, Customer],
               balances: dict[str, tuple[int, int]], at: datetime) -> list[EventIn]:
    ahead = catalog.loyalty.points.expiry_reminder
    assert ahead is not None
    # A superset (a local date ends at most a day after the moment it is reached), then
    # the exact rule per customer in their own time zone.
    # Spends lapse with the points they took (core/loyalty/rewards.py): a date loses its net.
    entries = session.exec(select(PointsEntry).where(
        col(PointsEntry.customer_id).in_(list(customers)),
        col(PointsEntry.occurred_at) <= at, col(PointsEntry.expires_at) > at,
        col(PointsEntry.expires_at) <= at + ahead + timedelta(days=1),
    ).order_by(col(PointsEntry.customer_id), col(PointsEntry.expires_at))).all()
    by_customer: dict[str, dict[date, list[PointsEntry]]] = {}
    for entry in entries:
        zone = customer_zone(customers[entry.customer_id], catalog.settings.default_timezone)
        day = entry.expires_at.astimezone(zone).date()  # type: ignore[union-attr]
        if day <= (at + ahead).astimezone(zone).date():
            by_customer.setdefault(entry.customer_id, {}).setdefault(day, []).append(entry)
    events: list[EventIn] = []
    for customer_id, days in by_customer.items():
        zone = customer_zone(customers[customer_id], catalog.settings.default_timezone)
        balance = balances.get(customer_id, (0, 0))[0]
        left = balance
        for day in sorted(days):
            lapsing = sum(e.points for e in days[day])
            points = min(lapsing, max(left, 0))
            left -= lapsing
            if points <= 0:
                continue
            first = min(e.expires_at for e in days[day] if e.points > 0)  # type: ignore[type-var]
            events.append(EventIn(
                id=f"points-expiring:{customer_id}:{day.isoformat()}", type="points_expiring",
                customer_id=customer_id, occurred_at=at,
                properties={"points": points, "expires_at": first.astimezone(zone).isoformat(),  # type: ignore[union-attr]
                            "expires_on": day.isoformat(), "balance": balance}))
    if not events:
        return []
    done = set(session.exec(select(Event.id).where(col(Event.id).in_([e.id for e in events]))).all())
    return [e for e in events if e.id not in done]


def _refresh(catalog: Catalog, db: Any, ids: list[str], at: datetime) -> list[EventIn]:
    """Refresh the stale customers under their row locks; the tier changes found."""
    changes: list[EventIn] = []
    if not ids:
        return changes
    with session_scope(db) as session:
        rows = session.exec(select(Customer).where(col(Customer.id).in_(ids)).order_by(col(Customer.id))
                            .with_for_update()).all()
        for customer in rows:
            old, new = loyalty.refresh_points_and_tier(session, customer, catalog.loyalty, at)
            change = loyalty.tier_changed_event(catalog.loyalty, customer.id, old, new,
                                                event_id=f"loyalty:tier:{customer.id}:{at.isoformat()}", at=at)
            if change is not None:
                changes.append(change)
                log.info("customer %s: tier %s -> %s", customer.id, old, new)
    return changes
