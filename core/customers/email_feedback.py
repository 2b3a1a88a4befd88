"""Bounces and complaints from an email provider's webhook, once each: the address
suppressed (hard bounce, complaint, or the Nth soft bounce), the customer's email
consent changed with its evidence (a complaint: ``opted_out``; a suppressed address:
``bounced``), and the email it answers (matched by our Message-ID, else by the
customer's address) marked ``bounced`` or ``complained``.

A delivery is applied once by the provider's event id (kept in ``inbound_messages``,
as ``email:<hash>``): a provider's retry of a soft bounce is not counted twice."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.customers import email_consent, email_suppressions
from store.db import session_scope
from store.tables import Customer, Email, InboundMessage

Kind = Literal["hard_bounce", "soft_bounce", "complaint"]
KINDS: tuple[Kind, ...] = ("hard_bounce", "soft_bounce", "complaint")


@dataclass(frozen=True, kw_only=True)
class Feedback:
    """One bounce or complaint, as a provider reported it."""

    provider: str  # mailgun | postmark
    kind: Kind
    address: str = field(repr=False)  # the recipient: never in reprs, which end up in logs
    event_id: str | None = None  # the provider's id of this report: applied once
    message_id: str | None = None  # the Message-ID header of the email, when the provider reports it


@dataclass(frozen=True)
class Applied:
    duplicate: bool = False
    suppressed: bool = False  # the address is suppressed now (it may have been before)
    emails: int = 0  # email_messages rows marked
    customers: int = 0  # customers whose consent changed


def bare(message_id: str) -> str:
    return message_id.strip().strip("<>").strip()


def apply(db: Any, feedback: Feedback, at: datetime, *, soft_bounce_limit: int) -> Applied:
    with session_scope(db) as session:
        if feedback.event_id and not _first_delivery(session, feedback, at):
            return Applied(duplicate=True)
        source = f"{feedback.provider}_webhook"
        address = feedback.address
        if feedback.kind == "soft_bounce":
            email_suppressions.count_soft_bounce(session, address, source=source, at=at, limit=soft_bounce_limit)
        else:
            email_suppressions.suppress(session, address, feedback.kind, source=source, at=at)
        suppressed = email_suppressions.find(session, address) is not None
        row = _email(session, feedback.message_id) if feedback.message_id else None
        emails = 0
        if row is not None and feedback.kind != "soft_bounce":
            row.status = "complained" if feedback.kind == "complaint" else "bounced"
            row.reason, row.updated_at = feedback.kind, at
            session.add(row)
            emails = 1
        changed = 0
        if feedback.kind == "complaint" or suppressed:
            status = "opted_out" if feedback.kind == "complaint" else "bounced"
            what = {"hard_bounce": "a hard bounce", "soft_bounce": f"{soft_bounce_limit} soft bounces",
                    "complaint": "a spam complaint"}[feedback.kind]
            evidence = f"{what} reported by {feedback.provider}" + (f" for email {row.id}" if row else "")
            for customer in _customers(session, address):
                if customer.email_consent == "opted_out" and status == "bounced":
                    continue  # an opt-out stays what it is; the suppression keeps the address safe
                changed += email_consent.record(session, customer, status, source=f"email_{feedback.kind}",
                                                at=at, disclosure=evidence)
        return Applied(suppressed=suppressed, emails=emails, customers=changed)


def _first_delivery(session: Session, feedback: Feedback, at: datetime) -> bool:
    digest = hashlib.sha256(f"{feedback.provider}\n{feedback.event_id}".encode()).hexdigest()[:40]
    try:
        with session.begin_nested():
            session.add(InboundMessage(sid=f"email:{digest}", received_at=at, handled_at=at))
    except IntegrityError:
        return False
    return True


def _email(session: Session, message_id: str) -> Email | None:
    wanted = bare(message_id)
    if not wanted:
        return None
    return session.exec(select(Email).where(
        col(Email.provider_message_id).in_([f"<{wanted}>", wanted])).with_for_update()).first()


def _customers(session: Session, address: str) -> list[Customer]:
    """The customers whose address it is now (one address may be on two profiles; a
    customer who has since changed address is not touched)."""
    wanted = email_suppressions.normalised(address)
    found = list(session.exec(select(Customer).where(
        func.lower(func.trim(col(Customer.email))) == wanted).with_for_update()).all())
    return sorted(found, key=lambda customer: customer.id)
