"""Customer profiles: create or update, with phone numbers stored as E.164 and every
consent change recorded with its evidence (and announced as an event)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import available_timezones

from core.clock import utcnow
from core.customers import consent
from core.customers.records import ensure_customer
from core.event import EventIn, EventPath
from core.segments import immediate
from core.sms.replies import ReplySender
from messaging.phone import to_e164
from store.db import session_scope
from store.tables import Customer

PROFILE_FIELDS = ("first_name", "last_name", "email", "locale", "timezone", "birthday")


@dataclass
class ProfileChange:
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    locale: str | None = None
    timezone: str | None = None
    birthday: date | None = None
    attributes: dict[str, Any] | None = None
    consent: str | None = None  # opted_in | opted_out | pending | none
    consent_source: str = "api"
    consent_text: str | None = None  # the disclosure the customer saw: evidence


async def upsert_customer(router: EventPath, customer_id: str, change: ProfileChange,
                          at: datetime | None = None) -> None:
    """Raises messaging.phone.InvalidPhoneNumber (a ValueError) for a bad number."""
    at = at or utcnow()
    if change.timezone is not None and change.timezone not in available_timezones():
        raise ValueError(f"{change.timezone!r} is not an IANA time zone, e.g. Europe/Stockholm")
    phone = to_e164(change.phone, router.catalog.settings.default_country) if change.phone else None
    await asyncio.to_thread(_write, router, customer_id, change, phone, at)
    if any(getattr(change, name) is not None for name in (*PROFILE_FIELDS, "attributes")):
        # No event announces a profile change: re-evaluate the rules reading the profile here.
        await immediate.reevaluate(router, customer_id, immediate.PROFILE_CHANGE,
                                   cause=f"profile:{customer_id}:{at.isoformat()}", at=at)
    if change.consent is None:
        return
    changed = await asyncio.to_thread(consent.record, router.db, customer_id, change.consent,
                                      source=change.consent_source, at=at, disclosure=change.consent_text)
    if changed and change.consent in ("opted_in", "opted_out"):
        await router.route(EventIn(id=f"consent:{customer_id}:{change.consent}:{at.isoformat()}",
                                   type=change.consent, customer_id=customer_id, occurred_at=at,
                                   properties={"source": change.consent_source}), source=change.consent_source)


def _write(router: EventPath, customer_id: str, change: ProfileChange, phone: str | None, at: datetime) -> None:
    with session_scope(router.db) as session:
        customer = ensure_customer(session, customer_id, at)
        if phone and phone != customer.phone:  # a new number starts usable; the same one keeps its status
            customer.phone, customer.phone_status = phone, "ok"
        for name in PROFILE_FIELDS:
            value = getattr(change, name)
            if value is not None:
                setattr(customer, name, value)
        if change.attributes:
            customer.attributes = {**(customer.attributes or {}), **change.attributes}
        customer.updated_at = at
        session.add(customer)


class ConsentError(ValueError):
    """A consent request that cannot be carried out; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


async def give_consent(router: EventPath, replies: ReplySender, customer_id: str, status: str, *, source: str,
                       disclosure: str | None, at: datetime | None = None) -> str:
    """Record a consent decision with its evidence; returns the customer's new status.

    An opt-in under ``opt_in: double`` sends the `confirm` text and leaves the customer
    `pending` until they reply YES (see core.sms.inbound). A single opt-in sends the
    `welcome` text (CTIA: confirm the program, frequency, HELP and STOP) at once.
    """
    at = at or utcnow()
    phone = await asyncio.to_thread(_phone_of, router.db, customer_id)
    current = await asyncio.to_thread(_consent_of, router.db, customer_id)
    if status == current == "opted_in":
        return current  # already subscribed: asking again would stop their texts until they reply
    if status == "opted_in" and phone is None:
        raise ConsentError("customer", "the customer has no usable phone number: set one first")
    if status == "opted_in" and phone is not None and router.catalog.settings.opt_in.mode == "double":
        await asyncio.to_thread(consent.record, router.db, customer_id, "pending", source=source, at=at,
                                disclosure=disclosure)
        await replies.send("confirm", phone=phone, customer_id=customer_id, key=f"{customer_id}:{at.isoformat()}",
                           at=at)
        return "pending"
    if status == "opted_in" and phone is not None:
        # The program's confirmation (CTIA) goes before the opted_in event starts journeys.
        await replies.send("welcome", phone=phone, customer_id=customer_id, key=f"{customer_id}:{at.isoformat()}",
                           at=at)
    await upsert_customer(router, customer_id, ProfileChange(consent=status, consent_source=source,
                                                             consent_text=disclosure), at)
    return status


def _consent_of(db: Any, customer_id: str) -> str | None:
    with session_scope(db, readonly=True) as session:
        customer = session.get(Customer, customer_id)
        return customer.sms_consent if customer else None


def _phone_of(db: Any, customer_id: str) -> str | None:
    with session_scope(db) as session:
        customer = session.get(Customer, customer_id)
        if customer is None or not customer.phone or customer.phone_status != "ok":
            return None
        return customer.phone
