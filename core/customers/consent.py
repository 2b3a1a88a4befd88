"""SMS consent, with its evidence: every change keeps who, when, how and the text shown."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, select

from core.customers.records import ensure_customer
from store.db import session_scope
from store.tables import ConsentRecord

STATUSES = ("none", "pending", "opted_in", "opted_out")


def record(db: Any, customer_id: str, status: str, *, source: str, at: datetime,
           disclosure: str | None = None) -> bool:
    """Set the customer's consent; returns whether it changed. Evidence is kept either way."""
    if status not in STATUSES:
        raise ValueError(f"unknown consent status {status!r}")
    with session_scope(db) as session:
        customer = ensure_customer(session, customer_id, at, for_update=True)
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
