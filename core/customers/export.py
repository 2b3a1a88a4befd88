"""Access and portability: one JSON-ready document with everything held about a customer.

Read in one read-only session, so the sections agree with each other. Every datetime is
ISO 8601 UTC; ``schema_version`` changes whenever a section or a field changes meaning.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlmodel import Session, SQLModel, col, or_, select

from core.clock import utcnow
from core.customers.records import UnknownCustomer, get_customer
from store.db import session_scope
from store.tables import (
    AttributeChange,
    Click,
    ConsentRecord,
    Coupon,
    Decision,
    Email,
    Enrollment,
    Event,
    Link,
    Message,
    PhoneSuppression,
    PointsEntry,
    Purchase,
    PurchaseItem,
    SegmentMembership,
)

SCHEMA_VERSION = 1

__all__ = ["SCHEMA_VERSION", "UnknownCustomer", "export_customer", "plain"]


def plain(value: Any) -> Any:
    """JSON-ready: datetimes as ISO 8601 UTC (``Z``), dates as ISO dates, containers walked."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _rows(rows: Any) -> list[dict[str, Any]]:
    return [plain(row.model_dump()) for row in rows]


def export_customer(db: Any, customer_id: str) -> dict[str, Any]:
    """Everything held about ``customer_id``; raises UnknownCustomer for an unknown id."""
    with session_scope(db, readonly=True) as session:
        customer = get_customer(session, customer_id)
        return {
            "schema_version": SCHEMA_VERSION,
            "generated_at": plain(utcnow()),
            "customer_id": customer_id,
            "profile": plain(customer.model_dump()),
            **_sections(session, customer_id, customer.phone),
        }


def _sections(session: Session, customer_id: str, phone: str | None) -> dict[str, Any]:
    def of(table: type[SQLModel], order: Any) -> list[dict[str, Any]]:
        query = select(table).where(table.customer_id == customer_id)  # type: ignore[attr-defined]
        return _rows(session.exec(query.order_by(order)).all())

    enrollments = session.exec(select(Enrollment).where(Enrollment.customer_id == customer_id)
                               .order_by(col(Enrollment.entered_at), col(Enrollment.id))).all()
    events = of(Event, col(Event.occurred_at))
    links = session.exec(select(Link).where(Link.customer_id == customer_id).order_by(col(Link.created_at))).all()
    clicks = session.exec(select(Click, Link).join(Link, col(Click.link_code) == col(Link.code))
                          .where(Link.customer_id == customer_id).order_by(col(Click.clicked_at), col(Click.id))).all()
    # A run's decisions (conditions, matched replies and their parsed answers, local times)
    # are keyed "<enrollment id>:...": they are the customer's as much as the run is.
    decisions: list[Decision] = []
    if enrollments:
        prefixes = [col(Decision.key).startswith(f"{run.id}:") for run in enrollments]
        decisions = list(session.exec(select(Decision).where(or_(*prefixes)).order_by(col(Decision.decided_at),
                                                                                      col(Decision.key))).all())
    suppressions = [] if phone is None else session.exec(select(PhoneSuppression)
                                                         .where(PhoneSuppression.phone == phone)).all()
    return {
        "consent_history": of(ConsentRecord, col(ConsentRecord.occurred_at)),
        "journeys": _rows(enrollments),
        "messages": of(Message, col(Message.created_at)),
        "emails": of(Email, col(Email.created_at)),
        "links": _rows(links),
        # Clicks store no IP address or user agent: only when, and why one was taken for a bot.
        "clicks": [{**plain(click.model_dump()), "url": link.url, "message_key": link.message_key,
                    "journey_id": link.journey_id, "step_id": link.step_id} for click, link in clicks],
        "answers": [event for event in events if event["type"] == "sms_replied"],
        "decisions": _rows(decisions),
        "events": events,
        "attribute_changes": of(AttributeChange, col(AttributeChange.changed_at)),
        "points_ledger": of(PointsEntry, col(PointsEntry.occurred_at)),
        "coupons": of(Coupon, col(Coupon.issued_at)),
        "purchases": of(Purchase, col(Purchase.occurred_at)),
        "purchase_items": of(PurchaseItem, col(PurchaseItem.occurred_at)),
        "segments": of(SegmentMembership, col(SegmentMembership.segment)),
        "phone_suppressions": _rows(suppressions),
        # Inbound messages are stored by provider id and time only (no number, no text):
        # their text reaches the customer's record as the `sms_replied` events above.
    }
