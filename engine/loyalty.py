"""Points and tiers: an append-only, idempotent ledger and the tier it implies."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from language.config import Loyalty
from store.tables import Customer, PointsEntry

TIER_WINDOW = timedelta(days=365)


def award(session: Session, customer: Customer, *, key: str, points: int, reason: str, at: datetime,
          expires_at: datetime | None, source: str) -> bool:
    """Add a ledger entry once per key; returns False if the key was already there."""
    if session.exec(select(PointsEntry.id).where(PointsEntry.key == key)).first() is not None:
        return False
    session.add(PointsEntry(key=key, customer_id=customer.id, points=points, reason=reason,
                            occurred_at=at, expires_at=expires_at, source=source))
    session.flush()
    return True


def default_expiry(loyalty: Loyalty, at: datetime) -> datetime | None:
    return at + loyalty.points.expire_after if loyalty.points.expire_after else None


def earned_in_window(session: Session, customer_id: str, at: datetime) -> int:
    total = session.exec(
        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
            PointsEntry.customer_id == customer_id,
            PointsEntry.points > 0,
            PointsEntry.occurred_at > at - TIER_WINDOW,
            PointsEntry.occurred_at <= at,
        )
    ).one()
    return int(total)


def refresh_points_and_tier(session: Session, customer: Customer, loyalty: Loyalty, at: datetime) -> tuple[
        str | None, str | None]:
    """Update the cached balance and tier; return (old tier, new tier)."""
    from engine.customers import points_balance

    customer.points = points_balance(session, customer.id, at)
    old = customer.tier
    customer.tier = loyalty.tier_for(earned_in_window(session, customer.id, at)) if loyalty.tiers else None
    session.add(customer)
    return old, customer.tier
