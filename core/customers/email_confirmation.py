"""Double opt-in for email: the confirmation email (once per pending consent record, by
the configured email sender) with a signed link, and the confirmation the link's page
posts. Only a followed link opts the customer in; its evidence names the pending record
(the disclosure the customer agreed to) and the confirmation email.

Exactly once as for journey emails: the row (``email_messages``, key
``email-confirm:<record id>``) is ``sending`` before the sender is called; an attempt
whose outcome is unknown is ``unconfirmed`` and not sent again, one the relay provably
refused (no connection, a 4xx) stays ``reserved`` and goes on the next request for the
same consent."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from datetime import datetime
from typing import Any

from sqlmodel import select

from core.customers import email_consent, email_suppressions
from messaging.senders.base import AmbiguousProviderError, PermanentProviderError, RetryableProviderError
from messaging.senders.email import EmailSender, OutgoingEmail
from store.db import session_scope
from store.tables import ConsentRecord, Customer, Email

log = logging.getLogger(__name__)

SOURCE = "email_double_opt_in"
FINAL = ("sent", "failed", "skipped", "unconfirmed", "bounced", "complained")


def _message_id(key: str, sender: str) -> str:
    domain = sender.rpartition("@")[2].strip(" >") or "journeys.invalid"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def _reserve(db: Any, sender: EmailSender, customer_id: str, record_id: int, *, base_url: str, brand: str,
             at: datetime) -> tuple[str, OutgoingEmail] | None:
    key = f"email-confirm:{record_id}"
    with session_scope(db) as session:
        customer = session.get(Customer, customer_id, with_for_update=True)
        row = session.exec(select(Email).where(Email.key == key)).first()
        if customer is None or not customer.email or (row is not None and row.status in FINAL):
            return None
        if row is not None and row.status == "sending":  # an earlier attempt may have reached the relay
            row.status, row.reason, row.updated_at = "unconfirmed", "provider_outcome_unknown", at
            session.add(row)
            return None
        row = row or Email(id=uuid.uuid4().hex, key=key, customer_id=customer_id, step_id="email_confirm",
                           purpose="transactional", created_at=at)
        suppression = email_suppressions.find(session, customer.email)
        if suppression is not None:
            row.status, row.reason, row.updated_at = "skipped", f"suppressed_{suppression.reason}", at
            session.add(row)
            return None
        token = email_consent.confirm_token(session, customer_id, record_id)
        url = f"{base_url.rstrip('/')}/email/confirm?t={token}"
        subject = f"{brand}: please confirm your email address"
        text = (f"Please confirm that you want marketing emails from {brand}:\n\n{url}\n\n"
                "If you did not ask for them, ignore this email: you will get none.")
        row.subject, row.body, row.status, row.reason = subject, text, "sending", None
        row.sent_at = row.updated_at = at
        row.provider = sender.name
        session.add(row)
        return row.id, OutgoingEmail(to=customer.email, sender=sender.from_address, subject=subject, text=text,
                                     message_id=_message_id(key, sender.from_address), message_key=key)


async def confirm_by_email(db: Any, sender: EmailSender, customer_id: str, record_id: int, *, base_url: str,
                           brand: str, at: datetime) -> str | None:
    """Send the confirmation email for this pending record, once; its row's status (None: nothing to send)."""
    reserved = await asyncio.to_thread(_reserve, db, sender, customer_id, record_id, base_url=base_url, brand=brand,
                                       at=at)
    if reserved is None:
        return None
    row_id, email = reserved
    status, fields = "sent", {"provider_message_id": email.message_id}
    try:
        await sender.send(email)
    except PermanentProviderError as err:
        if err.code == "smtp_auth":  # our configuration, not this email: the next request sends it
            log.error("the SMTP relay rejected our credentials: check JOURNEYS_SMTP_USERNAME/PASSWORD")
            status, fields = "reserved", {}
        else:
            status, fields = "failed", {"error_code": err.code or "error"}
    except AmbiguousProviderError:
        status, fields = "unconfirmed", {"reason": "provider_outcome_unknown"}
    except RetryableProviderError:
        status, fields = "reserved", {}
    await asyncio.to_thread(_settle, db, row_id, status, fields)
    return status


def _settle(db: Any, row_id: str, status: str, fields: dict[str, str]) -> None:
    with session_scope(db) as session:
        row = session.get(Email, row_id)
        assert row is not None
        row.status = status
        for name, value in fields.items():
            setattr(row, name, value)
        if status == "reserved":
            row.sent_at = None
        session.add(row)


def confirm(db: Any, token: str, at: datetime) -> str | None:
    """Follow a confirmation link: None if it is not one of ours; else the customer's email
    consent after it (``opted_in``, or what it was if the pending opt-in no longer stands:
    an opt-out or a bounce since)."""
    with session_scope(db) as session:
        found = email_consent.read_confirm_token(session, token)
        if found is None or not found[1].isdigit():
            return None
        customer_id, record_id = found
        customer = session.get(Customer, customer_id, with_for_update=True)
        pending = session.get(ConsentRecord, int(record_id))
        if customer is None or pending is None or pending.customer_id != customer_id:
            return None
        if customer.email_consent == "pending" and email_consent.pending_record(session, customer_id) == pending.id:
            email_consent.record(session, customer, "opted_in", source=SOURCE, at=at,
                                 disclosure=f"{pending.disclosure or ''} [confirmed by the link in the "
                                            f"confirmation email of consent record {pending.id}]".strip())
        return customer.email_consent


def valid(db: Any, token: str) -> bool:
    with session_scope(db, readonly=True) as session:
        return email_consent.read_confirm_token(session, token) is not None
