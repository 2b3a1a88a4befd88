"""Customers as journeys see them: profile plus computed fields, read fresh at a moment."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func
from sqlmodel import Session, col, or_, select

from core.customers.referral_codes import assign_referral_code
from store.tables import Customer, PointsEntry, SegmentMembership


class UnknownCustomer(LookupError):
    pass


def get_customer(session: Session, customer_id: str, *, for_update: bool = False) -> Customer:
    query = select(Customer).where(Customer.id == customer_id)
    if for_update:
        query = query.with_for_update()
    customer = session.exec(query).first()
    if customer is None:
        raise UnknownCustomer(f"no customer {customer_id!r}")
    return customer


def missing_customers(session: Session, customer_ids: list[str]) -> set[str]:
    """Which of these customer ids no customer has."""
    wanted = set(customer_ids)
    found = session.exec(select(Customer.id).where(col(Customer.id).in_(wanted))).all() if wanted else []
    return wanted - set(found)


def ensure_customer(session: Session, customer_id: str, at: datetime, *, for_update: bool = False) -> Customer:
    """Events may arrive before the profile: create a bare customer to attach them to.

    ``for_update`` locks the row (PostgreSQL) for read-modify-write of derived data, so
    two purchases at once cannot lose an update."""
    query = select(Customer).where(Customer.id == customer_id)
    customer = session.exec(query.with_for_update() if for_update else query).first()
    if customer is None:
        customer = Customer(id=customer_id, created_at=at, updated_at=at)
        session.add(customer)
        session.flush()
        assign_referral_code(session, customer)  # every customer has one to share
    return customer


def customer_zone(customer: Customer, default_timezone: str) -> ZoneInfo:
    for name in (customer.timezone, default_timezone, "UTC"):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def points_balance(session: Session, customer_id: str, at: datetime) -> int:
    total = session.exec(
        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
            PointsEntry.customer_id == customer_id,
            PointsEntry.occurred_at <= at,
            or_(col(PointsEntry.expires_at).is_(None), col(PointsEntry.expires_at) > at),
        )
    ).one()
    return int(total)


def segments_of(session: Session, customer_id: str) -> list[str]:
    return sorted(
        session.exec(select(SegmentMembership.segment).where(SegmentMembership.customer_id == customer_id)).all()
    )


def customer_view(session: Session, customer: Customer, at: datetime,
                  reads: frozenset[str] | None = None) -> dict[str, Any]:
    """The `customer` of expressions and templates (``expression_context`` adds the windows and
    habits of core.customers.habits). Never includes the phone number. ``reads``: the fields
    wanted (None: all); those that take a query of their own are left out unless wanted."""
    days_since = None
    if customer.last_purchase_at is not None:
        days_since = (at - customer.last_purchase_at).days
    avg = customer.total_spent / customer.orders_count if customer.orders_count else None
    view: dict[str, Any] = {
        "id": customer.id,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "email": customer.email,
        "locale": customer.locale,
        "timezone": customer.timezone,
        "birthday": customer.birthday,
        "attributes": dict(customer.attributes or {}),
        "tier": customer.tier,
        "total_spent": customer.total_spent,
        "orders_count": customer.orders_count,
        "avg_order_value": avg,
        "first_purchase_at": customer.first_purchase_at,
        "last_purchase_at": customer.last_purchase_at,
        "days_since_last_purchase": days_since,
        "sms_consent": customer.sms_consent,
        "referral_code": customer.referral_code,
    }
    if reads is None or "points" in reads:
        view["points"] = points_balance(session, customer.id, at)
    if reads is None or "segments" in reads:
        view["segments"] = segments_of(session, customer.id)
    return view
