"""Email consent, kept apart from SMS consent: the customer's ``email_consent`` and its
evidence (consent_records with ``channel = 'email'``), and the signed tokens of one-click
unsubscribe links (RFC 8058).

A token names the customer (the opaque id, never the address) and the message it came
in, signed with HMAC-SHA256 under a key derived from the pseudonym key (the setting, or
the one stored in the database): anyone holding a token can unsubscribe that customer
from email, and no one can make one for another customer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.customers import pseudonyms
from store.db import session_scope
from store.tables import ConsentRecord, Customer

STATUSES = ("none", "pending", "opted_in", "opted_out", "bounced")
_PURPOSE = b"email-unsubscribe/v1"
_CONFIRM_PURPOSE = b"email-confirm/v1"


def record(session: Session, customer: Customer, status: str, *, source: str, at: datetime,
           disclosure: str | None = None) -> bool:
    """Set the customer's email consent with its evidence; False if it already was ``status``."""
    if status not in STATUSES:
        raise ValueError(f"email consent must be one of {', '.join(STATUSES)}, not {status!r}")
    if customer.email_consent == status:
        return False
    customer.email_consent, customer.updated_at = status, at
    session.add(customer)
    session.add(ConsentRecord(customer_id=customer.id, status=status, source=source, channel="email",
                              disclosure=disclosure, occurred_at=at, recorded_at=at))
    return True


class EmailConsentError(ValueError):
    """The consent cannot be recorded as asked (the message says why)."""


def give(db: Any, customer_id: str, status: str, *, source: str, disclosure: str | None, at: datetime,
         double: bool = False) -> tuple[str, int | None]:
    """Record an email consent decision with its evidence; the new status, and under double
    opt-in (``double``) the id of the ``pending`` record a confirmation email is to confirm
    (None when nothing is to be confirmed: already opted in, or an opt-out).
    Raises LookupError for an unknown customer, EmailConsentError for an opt-in without an address."""
    with session_scope(db) as session:
        customer = session.get(Customer, customer_id, with_for_update=True)
        if customer is None:
            raise LookupError(customer_id)
        if status == "opted_in" and not customer.email:
            raise EmailConsentError("the customer has no email address: set one first")
        if not (double and status == "opted_in") or customer.email_consent == "opted_in":
            record(session, customer, status, source=source, at=at, disclosure=disclosure)
            return customer.email_consent, None
        record(session, customer, "pending", source=source, at=at, disclosure=disclosure)
        session.flush()
        return customer.email_consent, pending_record(session, customer_id)


def pending_record(session: Session, customer_id: str) -> int | None:
    """The id of the customer's latest ``pending`` email consent record (what a confirmation confirms)."""
    return session.exec(select(ConsentRecord.id).where(
        ConsentRecord.customer_id == customer_id, ConsentRecord.channel == "email",
        ConsentRecord.status == "pending").order_by(col(ConsentRecord.id).desc())).first()


def _key(session: Session, purpose: bytes = _PURPOSE) -> bytes:
    return hmac.new(pseudonyms.signing_key(session), purpose, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unsubscribe_token(session: Session, customer_id: str, message_id: str, *, purpose: bytes = _PURPOSE) -> str:
    payload = f"{customer_id}\n{message_id}".encode()
    signature = hmac.new(_key(session, purpose), payload, hashlib.sha256).digest()[:16]
    return f"{_b64(payload)}.{_b64(signature)}"


def confirm_token(session: Session, customer_id: str, record_id: int) -> str:
    """The double opt-in link's token: the customer and the pending consent record it confirms."""
    return unsubscribe_token(session, customer_id, str(record_id), purpose=_CONFIRM_PURPOSE)


def read_confirm_token(session: Session, token: str) -> tuple[str, str] | None:
    return read_token(session, token, purpose=_CONFIRM_PURPOSE)


def read_token(session: Session, token: str, *, purpose: bytes = _PURPOSE) -> tuple[str, str] | None:
    """(customer id, message id) of a token this server signed; None for anything else."""
    encoded, _, signature = token.partition(".")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except ValueError:
        return None
    expected = hmac.new(_key(session, purpose), payload, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(given, expected):
        return None
    customer_id, _, message_id = payload.decode(errors="replace").partition("\n")
    return (customer_id, message_id) if customer_id and message_id else None
