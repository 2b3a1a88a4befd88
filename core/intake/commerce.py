"""What a commerce platform's webhook asks of the engine (a ``Plan``), and carrying it out.

The platform adapters (core.intake.shopify, core.intake.woocommerce) turn one verified
payload into a Plan: events for the one event path (their ids derived from the
platform's ids, so a repeated delivery is a duplicate there), a profile change, a
consent statement with its evidence, or nothing (``ignored`` says why, never with
customer data: it is logged)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core.customers import consent
from core.event import EventIn, EventPath
from core.intake.profiles import ConsentError, ProfileChange, give_consent, upsert_customer
from core.sms.replies import ReplySender
from core.validation import MAX_AMOUNT, MAX_ITEM_TEXT, MAX_ITEMS, MAX_QUANTITY
from messaging.phone import InvalidPhoneNumber
from store.db import insert_ignoring_duplicates, session_scope
from store.tables import Event, WebhookDelivery

log = logging.getLogger(__name__)

MAX_TEXT = MAX_ITEM_TEXT
PENDING_CUSTOMER = "pending-lookup"  # an event's customer until customer_of has found it
__all__ = ["MAX_ITEMS", "Consent", "Plan", "already_handled", "carry_out", "handled"]


@dataclass
class Consent:
    status: str  # opted_in | opted_out
    at: datetime
    evidence: str  # what the platform said, kept as the disclosure
    confirmed: bool  # the platform confirmed the opt-in itself (double opt-in there)


@dataclass
class Plan:
    customer_id: str | None = None
    events: list[EventIn] = field(default_factory=list)
    profile: ProfileChange | None = None
    consent: Consent | None = None
    ignored: str | None = None  # why nothing is done (logged; no customer data)
    customer_of: str | None = None  # the events are for this stored event's customer (a refund's order)


async def carry_out(router: EventPath, replies: ReplySender, plan: Plan, *, source: str, topic: str) -> None:
    if plan.customer_of is not None:
        found = await asyncio.to_thread(_customer_of, router.db, plan.customer_of)
        if found is None:
            plan.ignored = "its order was never received as a purchase"
        plan.events = [event.model_copy(update={"customer_id": found}) for event in plan.events]
    if plan.ignored:
        log.info("%s webhook %s ignored: %s", source, topic, plan.ignored)
        return
    if plan.customer_id and plan.profile is not None:
        try:
            await upsert_customer(router, plan.customer_id, plan.profile)
        except InvalidPhoneNumber:  # the rest of the profile still counts
            log.info("%s webhook %s: the phone number is not usable, left out", source, topic)
            plan.profile.phone = None
            await upsert_customer(router, plan.customer_id, plan.profile)
    if plan.customer_id and plan.consent is not None:
        await _consent(router, replies, plan.customer_id, plan.consent, source=source, topic=topic)
    for event in plan.events:
        await router.route(event, source=source)


def _customer_of(db: Any, event_id: str) -> str | None:
    with session_scope(db, readonly=True) as session:
        row = session.get(Event, event_id)
        return row.customer_id if row is not None else None


def _stated_since(db: Any, customer_id: str, at: datetime) -> bool:
    with session_scope(db, readonly=True) as session:
        return consent.newer_than(session, customer_id, at)


async def _consent(router: EventPath, replies: ReplySender, customer_id: str, given: Consent, *, source: str,
                   topic: str) -> None:
    if await asyncio.to_thread(_stated_since, router.db, customer_id, given.at):
        # Webhooks arrive out of order and are redelivered: an older statement (a subscribe
        # redelivered after a STOP) never overrides a newer one.
        log.info("%s webhook %s: consent older than the customer's latest statement, ignored", source, topic)
        return
    if given.status == "opted_in" and given.confirmed:
        # Confirmed by the platform (its own double opt-in): subscribed now, no second confirmation.
        await upsert_customer(router, customer_id, ProfileChange(consent="opted_in", consent_source=source,
                                                                 consent_text=given.evidence), given.at)
        return
    try:
        # A single opt-in follows settings.yaml opt_in (double: the confirm text first).
        await give_consent(router, replies, customer_id, given.status, source=source, disclosure=given.evidence,
                           at=given.at)
    except ConsentError as err:
        log.info("%s webhook %s: consent not applied (%s)", source, topic, err)


# --- deliveries -----------------------------------------------------------------------------


def already_handled(db: Any, source: str, delivery_id: str | None) -> bool:
    """Whether this delivery (the platform's webhook or delivery id) was handled before."""
    if not delivery_id:
        return False
    with session_scope(db, readonly=True) as session:
        return session.get(WebhookDelivery, (source, delivery_id[:80])) is not None


def handled(db: Any, source: str, delivery_id: str | None, topic: str, at: datetime) -> None:
    """Record a delivery once it is carried out: one that failed midway is redelivered and
    done then (the events' own ids keep a half-done one from doubling anything)."""
    if not delivery_id:
        return
    with session_scope(db) as session:
        insert_ignoring_duplicates(session, WebhookDelivery, {"source": source, "delivery_id": delivery_id[:80],
                                                               "topic": topic[:64], "received_at": at})


# --- helpers the adapters share -----------------------------------------------------------


def money(value: Any) -> float | None:
    """A platform's money string ("19.99") or number as a float; None if it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite() or not 0 <= number <= MAX_AMOUNT:
        return None
    return float(number)


def text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """Non-empty text, cut to ``limit`` characters, NULs removed; else None."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    cleaned = str(value).replace("\x00", "").strip()[:limit]
    return cleaned or None


def platform_id(value: Any) -> str | None:
    """A platform's numeric or token id as text fit for an event id (letters, digits, _ . : -)."""
    cleaned = text(value, 80)
    if cleaned is None or not all(c.isalnum() or c in "_.:-" for c in cleaned) or not cleaned.isascii():
        return None
    return cleaned


def when(value: Any) -> datetime | None:
    """An ISO 8601 time with its offset (both platforms send them); None otherwise."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def line_item(product: Any, category: Any, quantity: Any, price: Any) -> dict[str, Any] | None:
    item = {"product": text(product), "category": text(category),
            "quantity": quantity if isinstance(quantity, int) and not isinstance(quantity, bool)
            and 1 <= quantity <= MAX_QUANTITY else 1,
            "price": money(price)}
    return item if item["product"] or item["category"] else None
