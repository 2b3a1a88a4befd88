"""Rewards: spending points for a coupon (loyalty.yaml ``rewards``).

``redeem`` is the one way points are spent, whoever asks (the API, the CLI, the REDEEM
text, a journey step): in one transaction under the customer's row lock it checks the
balance, writes negative ledger entries and issues a coupon of the reward's series, all
keyed by the caller's idempotency key, so a repeat of the same key returns the same
coupon and spends nothing more.

The balance is a plain sum of the live entries (core.customers.records.points_balance),
so a spend must lapse with the points it used, or the balance would drop below zero when
they expire: the points are taken from the soonest-expiring first, one negative entry
per expiry moment, each expiring with the points it took.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from core.customers.records import get_customer, points_balance
from core.loyalty import coupons
from core.loyalty import ledger as loyalty
from language.config import Loyalty
from store.db import Database, session_scope
from store.tables import Coupon, PointsEntry

SOURCE = "reward"
MAX_KEY_LENGTH = 120


class RewardRefused(Exception):
    """Nothing was spent. ``reason``: unknown_reward | not_enough_points | key_reused |
    coupon_pool_empty; the message says it in words ("not enough points: 320 of 500")."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Redeemed:
    reward: str
    points: int  # spent
    code: str
    series: str
    discount: str
    expires_at: datetime | None
    balance: int  # after
    repeat: bool  # this key had redeemed it before: nothing more was spent


def ledger_key(customer_id: str, key: str) -> str:
    return f"reward:{customer_id}:{key}"


def redeem(db: Database, rules: Loyalty, customer_id: str, reward: str, *, key: str, at: datetime) -> Redeemed:
    """Spend the reward's points for one coupon of its series. Raises UnknownCustomer,
    RewardRefused."""
    spec = rules.rewards.get(reward)
    if spec is None:
        known = ", ".join(sorted(rules.rewards)) or "none in loyalty.yaml"
        raise RewardRefused("unknown_reward", f"no reward {reward!r} (rewards: {known})")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"an idempotency key of 1 to {MAX_KEY_LENGTH} characters is required")
    series = rules.coupons[spec.coupon]  # the loader checked it exists
    entry_key = ledger_key(customer_id, key)
    with session_scope(db) as session:
        customer = get_customer(session, customer_id, for_update=True)  # one spender at a time
        done = session.exec(select(Coupon).where(Coupon.key == entry_key)).first()
        if done is not None:
            entry = session.exec(select(PointsEntry).where(PointsEntry.key == entry_key)).first()
            if done.series != spec.coupon or entry is None or entry.reason != f"reward: {reward}":
                raise RewardRefused("key_reused", f"the key {key!r} was used for another reward")
            return Redeemed(reward=reward, points=spec.points, code=done.code, series=done.series,
                            discount=series.discount, expires_at=done.expires_at,
                            balance=points_balance(session, customer_id, at), repeat=True)
        balance = points_balance(session, customer_id, at)
        if balance < spec.points:
            raise RewardRefused("not_enough_points", f"not enough points: {balance} of {spec.points}")
        try:
            coupon = coupons.issue(session, spec.coupon, series, key=entry_key, customer_id=customer_id, at=at)
        except coupons.CouponPoolEmpty:
            raise RewardRefused("coupon_pool_empty", f"no {spec.coupon} coupon left to give: try again later") from None
        for n, (expires_at, points) in enumerate(_soonest_first(session, customer_id, at, spec.points)):
            loyalty.award(session, customer, key=entry_key if n == 0 else f"{entry_key}:{n + 1}", points=-points,
                          reason=f"reward: {reward}", at=at, expires_at=expires_at, source=SOURCE)
        loyalty.refresh_points_and_tier(session, customer, rules, at)
        return Redeemed(reward=reward, points=spec.points, code=coupon.code, series=coupon.series,
                        discount=series.discount, expires_at=coupon.expires_at, balance=balance - spec.points,
                        repeat=False)


def _soonest_first(session: Session, customer_id: str, at: datetime, cost: int) -> list[tuple[datetime | None, int]]:
    """``cost`` points split over the expiry moments of the live points, soonest first:
    (expires_at, points) parts. What earlier spends took from a moment is already netted
    in its sum; a moment left negative (an older deduction) counts against the next."""
    live = session.exec(
        select(PointsEntry.expires_at, func.sum(PointsEntry.points)).where(
            PointsEntry.customer_id == customer_id, PointsEntry.occurred_at <= at,
            or_(col(PointsEntry.expires_at).is_(None), col(PointsEntry.expires_at) > at))
        .group_by(col(PointsEntry.expires_at))
    ).all()
    parts: list[tuple[datetime | None, int]] = []
    carry, left = 0, cost
    for expires_at, net in sorted(live, key=lambda row: (row[0] is None, row[0] or at)):
        available = int(net) + carry
        carry = min(available, 0)
        if available <= 0:
            continue
        take = min(available, left)
        parts.append((expires_at, take))
        left -= take
        if not left:
            break
    if left:  # the balance covers it, but later deductions were netted in later moments
        parts.append((None, left))
    return parts


def only_reward(rules: Loyalty) -> str | None:
    """The reward a bare REDEEM text asks for when there is only one."""
    return next(iter(rules.rewards)) if len(rules.rewards) == 1 else None
