"""Text-to-join: a `text_to_join` keyword (e.g. JOIN) texted from any number signs it up
through the same consent path as the API (give_consent): under `opt_in: double` the
customer is `pending` and gets the `confirm` text, and their YES (core.sms.inbound) opts
them in, sends the `welcome` text and the `opted_in` event that starts journeys; under
`single` the `welcome` goes out and they are opted in at once.

A number that is no customer's gets one, ``sms-<random>`` (never the number), its
creation serialized per number so two messages racing from it make one customer. The
evidence is a consent record with source ``sms_keyword:<KEYWORD>``, the customer (whose
number texted), the moment the message reached us and, as disclosure, the very text
sent in answer (the confirm, or under single opt-in the welcome).

From a known customer: opted_out or none is a new sign-up (a JOIN after STOP is a new
express consent); pending gets the confirm again, at most once per CONFIRM_AGAIN_AFTER;
opted_in gets the welcome text again (it says they are in, how often, HELP and STOP) and
nothing changes. Numbers we cannot text are left alone: a refused number type, a number
suppressed as unusable, a customer whose number is marked unusable.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlmodel import col, select

from core.customers.records import ensure_customer
from core.event import EventPath
from core.intake.profiles import ConsentError, give_consent
from core.sms.inbound import lift_opt_out
from core.sms.replies import ReplySender
from messaging.phone import mask, sms_refusal
from store.db import is_postgres, session_scope
from store.tables import Customer, Message, PhoneSuppression

log = logging.getLogger(__name__)

CONFIRM_AGAIN_AFTER = timedelta(hours=1)  # a pending number texting JOIN again gets the confirm at most this often


@dataclass
class TextToJoin:
    """core.sms.inbound.Joiner: wired into Inbound by the processes that take inbound SMS."""

    router: EventPath
    replies: ReplySender

    async def join(self, keyword: str, *, phone: str, customers: list[Customer], at: datetime,
                   message_sid: str) -> list[str]:
        if sms_refusal(phone) is not None or await asyncio.to_thread(self._unusable, phone):
            log.info("text-to-join from %s ignored: the number cannot take a text", mask(phone))
            return [c.id for c in customers]
        source = f"sms_keyword:{keyword}"
        if not customers:
            customers = await asyncio.to_thread(self._customers_of_number, phone, source, at)
        # A number shared by several customers signs up its most recently updated one.
        customer = customers[0]
        if customer.sms_consent == "opted_in":
            await self.replies.send("welcome", phone=phone, customer_id=customer.id, key=message_sid, at=at)
            return [customer.id]
        if customer.sms_consent == "pending" and await asyncio.to_thread(self._confirmed_lately, customer.id, at):
            log.info("text-to-join from customer %s: a confirm went out within %s; not sent again", customer.id,
                     CONFIRM_AGAIN_AFTER)
            return [customer.id]
        double = self.router.catalog.settings.opt_in.mode == "double"
        texts = self.replies.settings.replies
        if not double:
            await asyncio.to_thread(lift_opt_out, self.router.db, phone, at)  # under double, YES lifts it
        try:
            await give_consent(self.router, self.replies, customer.id, "opted_in", source=source, at=at,
                               disclosure=texts.confirm if double else texts.welcome)
        except ConsentError as err:  # the customer's number is marked unusable
            log.info("text-to-join from customer %s ignored: %s", customer.id, err)
        return [customer.id]

    def _unusable(self, phone: str) -> bool:
        with session_scope(self.router.db, readonly=True) as session:
            found = session.get(PhoneSuppression, phone)
            return found is not None and found.reason != "opted_out"

    def _customers_of_number(self, phone: str, source: str, at: datetime) -> list[Customer]:
        """The number's customers, newest first; a new one if it has none. One number at a
        time: PostgreSQL by an advisory lock on (a hash of) the number, SQLite because its
        writing transactions are serialized (BEGIN IMMEDIATE)."""
        db = self.router.db
        with session_scope(db) as session:
            if is_postgres(db):
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(phone)})
            found = list(session.exec(select(Customer).where(Customer.phone == phone)
                                      .order_by(col(Customer.updated_at).desc())).all())
            if found:
                return found
            customer = ensure_customer(session, f"sms-{uuid.uuid4().hex[:24]}", at)
            customer.phone, customer.phone_status = phone, "ok"
            customer.attributes = {**(customer.attributes or {}), "signup_source": source}
            session.add(customer)
            log.info("text-to-join from %s: new customer %s", mask(phone), customer.id)
            return [customer]

    def _confirmed_lately(self, customer_id: str, at: datetime) -> bool:
        with session_scope(self.router.db, readonly=True) as session:
            return session.exec(select(Message.id).where(
                Message.customer_id == customer_id, col(Message.key).startswith("reply:confirm:"),
                col(Message.created_at) > at - CONFIRM_AGAIN_AFTER).limit(1)).first() is not None


def _lock_key(phone: str) -> int:
    """A signed 64-bit key for pg_advisory_xact_lock (only ever held in memory)."""
    return int.from_bytes(hashlib.sha256(f"text-to-join:{phone}".encode()).digest()[:8], "big", signed=True)
