"""Points and tiers: an append-only, idempotent ledger and the tier it implies.

The ledger (``points_ledger``) is the truth: every award is one row, written once per
business ``key`` and never changed. A customer's balance at a moment is the sum of
their entries that have occurred and not yet expired (``core.customers.records.points_balance``);
their tier follows the points they EARNED (positive entries) in the 365 days up to that
moment. ``Customer.points`` and ``Customer.tier`` cache both for segment rules and
expressions: purchases and ``award_points`` refresh them at once, the daily loyalty job
(``core.loyalty.maintenance``) refreshes them when points expire or leave the window.

This module also holds what the CLI and the API show of a customer's points
(``account``) and their referral code (``ensure_referral_code``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.customers.records import customer_zone, get_customer, points_balance
from core.customers.referral_codes import assign_referral_code
from core.event import EventIn
from language.config import Loyalty
from store.db import Database, session_scope
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
    """When points earned at ``at`` lapse: ``points.expire_after`` later, or never."""
    return at + loyalty.points.expire_after if loyalty.points.expire_after else None


def earned_in_window(session: Session, customer_id: str, at: datetime) -> int:
    """Points earned (positive entries, expired or not) in the 365 days up to ``at``:
    what the tier follows. Deductions do not lower a tier."""
    total = session.exec(
        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
            PointsEntry.customer_id == customer_id,
            PointsEntry.points > 0,
            PointsEntry.occurred_at > at - TIER_WINDOW,
            PointsEntry.occurred_at <= at,
        )
    ).one()
    return int(total)


def tier_for(loyalty: Loyalty, earned: int) -> str | None:
    """The tier for points earned in the window; None when loyalty.yaml has no tiers."""
    return loyalty.tier_for(earned) if loyalty.tiers else None


def refresh_points_and_tier(session: Session, customer: Customer, loyalty: Loyalty, at: datetime) -> tuple[
        str | None, str | None]:
    """Update the cached balance and tier; return (old tier, new tier)."""
    customer.points = points_balance(session, customer.id, at)
    old = customer.tier
    customer.tier = tier_for(loyalty, earned_in_window(session, customer.id, at))
    session.add(customer)
    return old, customer.tier


def tier_direction(loyalty: Loyalty, old: str | None, new: str | None) -> str:
    """``up`` or ``down``, by the tiers' order in loyalty.yaml (no tier is below all)."""
    order = {t.name: index for index, t in enumerate(loyalty.tiers)}
    return "up" if order.get(new or "", -1) > order.get(old or "", -1) else "down"


def tier_changed_event(loyalty: Loyalty, customer_id: str, old: str | None, new: str | None, *, event_id: str,
                       at: datetime) -> EventIn | None:
    """The ``tier_changed`` event for a change, or None when the tier stayed the same.

    Properties: ``from`` (None for a customer's first tier), ``to`` (None when they fall
    below the lowest tier's min_points) and ``direction`` (``up`` | ``down``).
    """
    if old == new:
        return None
    return EventIn(id=event_id, type="tier_changed", customer_id=customer_id, occurred_at=at,
                   properties={"from": old, "to": new, "direction": tier_direction(loyalty, old, new)})


def ensure_referral_code(db: Database, customer_id: str) -> str:
    """``assign_referral_code`` in its own transaction (a read first: most customers
    already have theirs). Raises core.customers.records.UnknownCustomer."""
    with session_scope(db, readonly=True) as session:
        code = get_customer(session, customer_id).referral_code
    if code:
        return code
    with session_scope(db) as session:
        return assign_referral_code(session, get_customer(session, customer_id, for_update=True))


# --- what the CLI and the API show --------------------------------------------------------


@dataclass
class LedgerLine:
    occurred_at: datetime
    points: int
    reason: str
    source: str
    expires_at: datetime | None
    expired: bool


@dataclass
class Account:
    """A customer's points at a moment. ``tier`` is the tier journeys see (the cached
    one: a downgrade shows after the daily job); ``earned_last_12_months`` is live."""

    customer_id: str
    balance: int
    tier: str | None
    earned_last_12_months: int
    next_tier: str | None
    points_to_next_tier: int | None
    next_expiry_at: datetime | None
    next_expiry_points: int
    referral_code: str | None
    history: list[LedgerLine] = field(default_factory=list)
    history_total: int = 0


def account(session: Session, customer: Customer, loyalty: Loyalty, at: datetime, *, default_timezone: str = "UTC",
            limit: int = 100) -> Account:
    """Balance, tier, earnings, the next expiry and the newest ``limit`` ledger entries."""
    earned = earned_in_window(session, customer.id, at)
    next_tier = next(((t.name, t.min_points) for t in loyalty.tiers if t.min_points > earned), None)
    # Spends lapse with the points they took (core/loyalty/rewards.py): a day loses its net.
    upcoming = session.exec(select(PointsEntry).where(
        PointsEntry.customer_id == customer.id, PointsEntry.occurred_at <= at, col(PointsEntry.expires_at) > at,
    ).order_by(col(PointsEntry.expires_at))).all()
    next_at, next_points = None, 0
    zone = customer_zone(customer, default_timezone)
    by_day: dict[date, list[PointsEntry]] = {}
    for e in upcoming:
        by_day.setdefault(e.expires_at.astimezone(zone).date(), []).append(e)  # type: ignore[union-attr]
    for day in sorted(by_day):
        net = sum(e.points for e in by_day[day])
        if net > 0:
            next_at = min(e.expires_at for e in by_day[day] if e.points > 0)  # type: ignore[type-var]
            next_points = net
            break
    rows = session.exec(select(PointsEntry).where(PointsEntry.customer_id == customer.id)
                        .order_by(col(PointsEntry.occurred_at).desc(), col(PointsEntry.id).desc()).limit(limit)).all()
    total = session.exec(select(func.count()).select_from(PointsEntry)
                         .where(PointsEntry.customer_id == customer.id)).one()
    return Account(
        customer_id=customer.id,
        balance=points_balance(session, customer.id, at),
        tier=customer.tier,
        earned_last_12_months=earned,
        next_tier=next_tier[0] if next_tier else None,
        points_to_next_tier=next_tier[1] - earned if next_tier else None,
        next_expiry_at=next_at,
        next_expiry_points=next_points,
        referral_code=customer.referral_code,
        history=[LedgerLine(occurred_at=e.occurred_at, points=e.points, reason=e.reason, source=e.source,
                            expires_at=e.expires_at, expired=e.expires_at is not None and e.expires_at <= at)
                 for e in rows],
        history_total=int(total),
    )


def load_account(db: Database, customer_id: str, loyalty: Loyalty, at: datetime, *, default_timezone: str = "UTC",
                 limit: int = 100) -> Account:
    """``account`` for the CLI and the API. With a referral program in loyalty.yaml, a
    customer without a referral code gets one now. Raises UnknownCustomer."""
    if loyalty.referral is not None:
        ensure_referral_code(db, customer_id)
    with session_scope(db, readonly=True) as session:
        customer = get_customer(session, customer_id)
        return account(session, customer, loyalty, at, default_timezone=default_timezone, limit=limit)
