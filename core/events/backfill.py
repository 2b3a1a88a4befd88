"""`journeys import shopify`: the shop's existing customers (with their SMS consent and
its evidence) and their order history, read through Shopify's Admin API, so segments and
tiers are right on day one (docs/shopify.md "Back-fill").

Resumable and never duplicating: each resource's next page is kept in ``import_cursors``
after the page is done (an interrupted run starts again at the page it was on, and a page
done twice changes nothing), and every order becomes the same events its webhooks make
(``shopify:order:<id>``, ``:cancelled``, ``shopify:refund:<id>``): a later webhook for an
imported order is a duplicate.

Customers take the webhooks' path: a subscribed customer is opted in with the shop's
evidence, announced like a CSV import's (journeys an ``opted_in`` starts, start). Orders
are history: stored with what they derive (orders, spend, points, tier) and marked routed
at once, so no journey starts or hears of a purchase made before the engine was there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from core.clock import utcnow
from core.events.router import EventRouter
from core.intake import shopify
from core.intake.commerce import Plan, carry_out
from core.sms.replies import ReplySender
from store.db import session_scope
from store.tables import Event, ImportCursor

log = logging.getLogger(__name__)

RESOURCES = ("customers", "orders")  # customers first: orders then find their customer
SOURCE = "shopify:import"


class AdminPages(Protocol):
    def pages(self, resource: str, cursor: str | None) -> Iterator[tuple[list[dict[str, Any]], str | None]]: ...

    def count(self, resource: str) -> int | None: ...


Progress = Callable[[str, int, int | None], None]  # resource, done so far, total (None: unknown)


@dataclass
class BackfillReport:
    customers: int = 0
    orders: int = 0
    purchases: int = 0  # new purchase events (an order seen before is not counted)
    already_done: tuple[str, ...] = ()  # resources a finished earlier run had done (--restart redoes them)


async def import_shopify(router: EventRouter, replies: ReplySender, admin: AdminPages, *,
                         progress: Progress | None = None, restart: bool = False) -> BackfillReport:
    """Import every customer, then every order, from where the last run stopped."""
    report = BackfillReport()
    done_before: list[str] = []
    for resource in RESOURCES:
        name = f"shopify:{resource}"
        cursor, done, finished = await asyncio.to_thread(_cursor, router, name, restart)
        if finished:
            done_before.append(resource)
            continue
        total = await asyncio.to_thread(admin.count, resource)
        if progress:
            progress(resource, done, total)
        pages = admin.pages(resource, cursor)
        while (page := await asyncio.to_thread(next, pages, None)) is not None:
            items, following = page
            for item in items:
                if resource == "customers":
                    await _customer(router, replies, item)
                    report.customers += 1
                else:
                    report.purchases += await _order(router, item)
                    report.orders += 1
            done += len(items)
            await asyncio.to_thread(_save, router, name, following, done)
            if progress:
                progress(resource, done, total)
    report.already_done = tuple(done_before)
    return report


def _cursor(router: EventRouter, name: str, restart: bool) -> tuple[str | None, int, bool]:
    with session_scope(router.db) as session:
        row = session.get(ImportCursor, name)
        if row is None or restart:
            row = row or ImportCursor(name=name)
            row.cursor, row.done, row.updated_at = None, 0, utcnow()
            session.add(row)
            return None, 0, False
        return row.cursor, row.done, row.cursor is None and row.done > 0  # no next page: finished


def _save(router: EventRouter, name: str, cursor: str | None, done: int) -> None:
    with session_scope(router.db) as session:
        row = session.get(ImportCursor, name) or ImportCursor(name=name)
        row.cursor, row.done, row.updated_at = cursor, done, utcnow()
        session.add(row)


async def _customer(router: EventRouter, replies: ReplySender, customer: dict[str, Any]) -> None:
    plan = shopify.plan("customers/update", customer)
    if plan.consent is not None:
        # Collected by the shop, evidence kept: as a CSV import, no confirmation text to the whole list.
        plan.consent.confirmed = True
    await carry_out(router, replies, plan, source=SOURCE, topic="import customers")


async def _order(router: EventRouter, order: dict[str, Any]) -> int:
    plans = [shopify.plan("orders/create", order)]  # paid, partially paid or authorized: a purchase
    if order.get("cancelled_at"):
        plans.append(shopify.plan("orders/cancelled", order))
    plans += [shopify.plan("refunds/create", refund) for refund in order.get("refunds") or []
              if isinstance(refund, dict)]
    new = 0
    for plan in plans:
        for event in await asyncio.to_thread(_events_of, router, plan):
            new += await asyncio.to_thread(_store_history, router, event)
    return new


def _events_of(router: EventRouter, plan: Plan) -> list[Any]:
    if plan.ignored:
        return []
    if plan.customer_of is None:
        return plan.events
    with session_scope(router.db, readonly=True) as session:
        purchase = session.get(Event, plan.customer_of)
    if purchase is None:  # a refund of an order that was never a purchase
        return []
    return [event.model_copy(update={"customer_id": purchase.customer_id}) for event in plan.events]


def _store_history(router: EventRouter, event: Any) -> int:
    """Stored with what it derives, then marked routed with its follow-ups (the sweeper must
    not route them later): 1 when new, 0 when it was there."""
    stored = router.store.store(event, SOURCE)
    if stored is None:
        return 0
    for follow_up in stored.derived:
        router.store.mark_routed(follow_up.id)
    router.store.mark_routed(event.id)
    return 1 if event.type == "purchase" else 0
