"""The program report: the SMS list, customers' purchases and the loyalty program, over
a period [since, until). A pure function of the tables, like the journey report.
Every figure is a GROUP BY in the database; Python only arranges the few rows it returns.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Float, and_, case, cast, exists, func, select
from sqlmodel import col

from core.reports.sql import index_of, month_index, month_of, report_connection
from store.db import Database
from store.tables import ConsentRecord, Coupon, Customer, Event, PointsEntry

CLV_WINDOW = timedelta(days=365)
CHURN_AFTER = timedelta(days=90)  # a customer with no purchase for this long has churned


class SubscriberMonth(BaseModel):
    month: str = Field(description="YYYY-MM (UTC)")
    opt_ins: int = Field(description="Customers who became opted_in that month")
    opt_outs: int = Field(description="Opted-in customers who opted out that month")
    net: int
    subscribers: int = Field(description="Opted-in customers at the end of the month")


class Cohort(BaseModel):
    month: str = Field(description="The month of the customers' first purchase")
    customers: int
    retention: list[float] = Field(description="Share of the cohort buying in month 0, 1, 2, ... after it")
    churned: float = Field(description=f"Share with no purchase in the {CHURN_AFTER.days} days before `until`")


class Purchases(BaseModel):
    orders: int
    revenue: float
    buyers: int
    repeat_buyers: int = Field(description="Buyers with two or more orders in the period")
    repeat_purchase_rate: float | None = Field(description="repeat_buyers / buyers")
    average_order_value: float | None = Field(description="revenue / orders")


class Clv(BaseModel):
    customers: int = Field(description="Customers who had bought before `until`")
    revenue: float = Field(description="What they spent in the 12 months before `until`")
    clv: float | None = Field(description="revenue / customers")


class TierMove(BaseModel):
    from_tier: str | None
    to_tier: str | None
    direction: str | None
    customers: int


class CouponSeriesFigures(BaseModel):
    series: str
    issued: int
    redeemed: int
    redemption_rate: float | None


class Loyalty(BaseModel):
    points_issued: int = Field(description="Points earned (positive ledger entries) in the period")
    points_expired: int = Field(description="Earned points whose expiry fell in the period")
    tiers: dict[str, int] = Field(description="Customers per tier now ('none': below every tier)")
    tier_moves: list[TierMove]
    punch_card_rewards: int
    punch_card_points: int
    referrals_converted: int
    coupons: list[CouponSeriesFigures]


class ProgramReport(BaseModel):
    since: datetime | None
    until: datetime
    subscribers: list[SubscriberMonth]
    cohorts: list[Cohort]
    purchases: Purchases
    clv_subscribers: Clv = Field(description="Customers opted in to SMS now")
    clv_others: Clv
    loyalty: Loyalty


def program_report(db: Database, *, until: datetime, since: datetime | None = None) -> ProgramReport:
    # Read-only: on SQLite a plain transaction would hold the write lock for the whole report.
    with report_connection(db) as connection:
        def rows(query: Any) -> list[Any]:
            return list(connection.execute(query))

        return ProgramReport(
            since=since, until=until, subscribers=_subscribers(rows, since, until),
            cohorts=_cohorts(rows, since, until), purchases=_purchases(rows, since, until),
            clv_subscribers=_clv(rows, until, subscribers=True), clv_others=_clv(rows, until, subscribers=False),
            loyalty=_loyalty(rows, since, until))


def _before(moment: datetime, delta: timedelta) -> datetime:
    try:
        return moment - delta
    except OverflowError:  # a period ending in year 1
        return datetime.min.replace(tzinfo=moment.tzinfo)


def _in(column: Any, since: datetime | None, until: datetime) -> Any:
    return column < until if since is None else and_(column >= since, column < until)


def _amount() -> Any:
    # Validated on the way in: a number, or numeric text; missing counts as 0.
    return func.coalesce(cast(col(Event.properties)["amount"].as_string(), Float), 0.0)


def _subscribers(rows: Any, since: datetime | None, until: datetime) -> list[SubscriberMonth]:
    """Changes of consent, not statements: a second YES from a subscriber is no new opt-in."""
    previous = func.lag(col(ConsentRecord.status)).over(partition_by=col(ConsentRecord.customer_id),
                                                  order_by=(col(ConsentRecord.occurred_at), col(ConsentRecord.id)))
    changes = select(col(ConsentRecord.status).label("status"), previous.label("before"),
                     month_index(col(ConsentRecord.occurred_at)).label("month")
                     ).where(col(ConsentRecord.occurred_at) < until).subquery()
    opt_in = and_(changes.c.status == "opted_in", func.coalesce(changes.c.before, "none") != "opted_in")
    opt_out = and_(changes.c.status == "opted_out", changes.c.before == "opted_in")
    found = rows(select(changes.c.month, func.sum(case((opt_in, 1), else_=0)), func.sum(case((opt_out, 1), else_=0)))
                 .group_by(changes.c.month).order_by(changes.c.month))
    months: list[SubscriberMonth] = []
    total = 0
    first = index_of(since) if since is not None else None
    for month, ins, outs in found:
        total += int(ins) - int(outs)
        if first is None or month >= first:
            months.append(SubscriberMonth(month=month_of(month), opt_ins=int(ins), opt_outs=int(outs),
                                          net=int(ins) - int(outs), subscribers=total))
    return months


def _cohorts(rows: Any, since: datetime | None, until: datetime) -> list[Cohort]:
    cohort = month_index(col(Customer.first_purchase_at))
    in_period = _in(col(Customer.first_purchase_at), since, until)
    # Churned: no purchase in the CHURN_AFTER before `until` (whatever came after it).
    recent = exists().where(col(Event.customer_id) == col(Customer.id), col(Event.type) == "purchase",
                            col(Event.occurred_at) >= _before(until, CHURN_AFTER), col(Event.occurred_at) < until)
    sizes = {m: (n, churned) for m, n, churned in rows(
        select(cohort, func.count(), func.sum(case((~recent, 1), else_=0)))
        .where(in_period).group_by(cohort))}
    offset = (month_index(col(Event.occurred_at)) - cohort).label("offset")
    active: dict[int, dict[int, int]] = defaultdict(dict)
    for month, after, buyers in rows(
            select(cohort, offset, func.count(func.distinct(col(Event.customer_id))))
            .join(Customer, col(Customer.id) == col(Event.customer_id))
            .where(col(Event.type) == "purchase", col(Event.occurred_at) < until, in_period)
            .group_by(cohort, offset)):
        active[month][int(after)] = int(buyers)
    # Up to the last month anyone bought in (not to a far `until`).
    last = max((after + month for month, offsets in active.items() for after in offsets), default=0)
    return [Cohort(month=month_of(month), customers=n,
                   retention=[active[month].get(k, 0) / n for k in range(last - month + 1)],
                   churned=int(churned or 0) / n)
            for month, (n, churned) in sorted(sizes.items())]


def _purchases(rows: Any, since: datetime | None, until: datetime) -> Purchases:
    per_customer = (select(col(Event.customer_id), func.count().label("orders"), func.sum(_amount()).label("revenue"))
                    .where(col(Event.type) == "purchase", _in(col(Event.occurred_at), since, until))
                    .group_by(col(Event.customer_id)).subquery())
    orders, revenue, buyers, repeat = rows(select(
        func.coalesce(func.sum(per_customer.c.orders), 0), func.coalesce(func.sum(per_customer.c.revenue), 0.0),
        func.count(), func.coalesce(func.sum(case((per_customer.c.orders >= 2, 1), else_=0)), 0)))[0]
    return Purchases(orders=int(orders), revenue=float(revenue), buyers=int(buyers), repeat_buyers=int(repeat),
                     repeat_purchase_rate=int(repeat) / buyers if buyers else None,
                     average_order_value=float(revenue) / int(orders) if orders else None)


def _clv(rows: Any, until: datetime, *, subscribers: bool) -> Clv:
    subscribed = col(Customer.sms_consent) == "opted_in"
    who = and_(col(Customer.first_purchase_at) < until, subscribed if subscribers else ~subscribed)
    customers = rows(select(func.count()).select_from(Customer).where(who))[0][0]
    revenue = rows(select(func.coalesce(func.sum(_amount()), 0.0))
                   .join(Customer, col(Customer.id) == col(Event.customer_id))
                   .where(who, col(Event.type) == "purchase", col(Event.occurred_at) >= _before(until, CLV_WINDOW),
                          col(Event.occurred_at) < until))[0][0]
    return Clv(customers=int(customers), revenue=float(revenue),
               clv=float(revenue) / int(customers) if customers else None)


def _loyalty(rows: Any, since: datetime | None, until: datetime) -> Loyalty:
    earned = col(PointsEntry.points) > 0
    issued = rows(select(func.coalesce(func.sum(col(PointsEntry.points)), 0))
                  .where(earned, _in(col(PointsEntry.occurred_at), since, until)))[0][0]
    expired = rows(select(func.coalesce(func.sum(col(PointsEntry.points)), 0))
                   .where(earned, _in(col(PointsEntry.expires_at), since, until)))[0][0]
    tiers = {tier or "none": n
             for tier, n in rows(select(col(Customer.tier), func.count()).group_by(col(Customer.tier)))}
    props = col(Event.properties)
    # One expression object each: PostgreSQL matches GROUP BY to SELECT by their bound parameters.
    move = (props["from"].as_string(), props["to"].as_string(), props["direction"].as_string())
    moves = [TierMove(from_tier=a, to_tier=b, direction=d, customers=n) for a, b, d, n in rows(
        select(*move, func.count(func.distinct(col(Event.customer_id))))
        .where(col(Event.type) == "tier_changed", _in(col(Event.occurred_at), since, until))
        .group_by(*move))]
    moves.sort(key=lambda m: (m.from_tier or "", m.to_tier or ""))
    punches, punch_points = rows(select(func.count(), func.coalesce(func.sum(col(PointsEntry.points)), 0))
                                 .where(col(PointsEntry.source) == "punch_card",
                                        _in(col(PointsEntry.occurred_at), since, until)))[0]
    referrals = rows(select(func.count()).select_from(Event).where(
        col(Event.type) == "referral_converted", _in(col(Event.occurred_at), since, until)))[0][0]
    coupons = [CouponSeriesFigures(series=series, issued=n, redeemed=r, redemption_rate=r / n if n else None)
               for series, n, r in rows(
                   select(col(Coupon.series), func.count(), func.count(col(Coupon.redeemed_at)))
                   .where(_in(col(Coupon.issued_at), since, until))
                   .group_by(col(Coupon.series)).order_by(col(Coupon.series)))]
    return Loyalty(points_issued=int(issued), points_expired=int(expired), tiers=dict(sorted(tiers.items())),
                   tier_moves=moves, punch_card_rewards=int(punches), punch_card_points=int(punch_points),
                   referrals_converted=int(referrals), coupons=coupons)


