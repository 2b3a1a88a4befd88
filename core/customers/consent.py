"""SMS consent, with its evidence: every change keeps who, when, how and the text shown."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.customers.records import ensure_customer
from store.db import session_scope
from store.tables import ConsentRecord

STATUSES = ("none", "pending", "opted_in", "opted_out")


def record(db: Any, customer_id: str, status: str, *, source: str, at: datetime,
           disclosure: str | None = None, only_if_newer: bool = False) -> bool:
    """Set the customer's consent; returns whether it changed. Evidence is kept either way.

    ``only_if_newer``: a statement made before the customer's latest recorded one (an
    inbound message received before a later STOP, handled late) changes nothing and
    adds no evidence: consent never goes backwards because of an older message.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown consent status {status!r}")
    with session_scope(db) as session:
        customer = ensure_customer(session, customer_id, at, for_update=True)
        if only_if_newer and newer_than(session, customer_id, at):
            return False
        changed = customer.sms_consent != status
        customer.sms_consent = status
        customer.updated_at = at
        session.add(customer)
        latest = session.exec(select(ConsentRecord).where(ConsentRecord.customer_id == customer_id)
                              .order_by(col(ConsentRecord.id).desc())).first()
        statement = (status, source, disclosure)
        repeat = latest is not None and (latest.status, latest.source, latest.disclosure) == statement
        if changed or not repeat:  # the same statement again adds no evidence
            session.add(ConsentRecord(customer_id=customer_id, status=status, source=source, disclosure=disclosure,
                                      occurred_at=at, recorded_at=at))
        return changed


def newer_than(session: Session, customer_id: str, at: datetime) -> bool:
    """Whether the customer made a consent statement after ``at``."""
    newest = session.exec(select(ConsentRecord.occurred_at).where(ConsentRecord.customer_id == customer_id)
                          .order_by(col(ConsentRecord.occurred_at).desc()).limit(1)).first()
    return newest is not None and newest > at
