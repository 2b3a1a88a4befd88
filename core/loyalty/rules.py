"""The loyalty rules a purchase sets off (loyalty.yaml), in the purchase's own transaction.

``on_purchase`` is called once per stored purchase event by ``EventStore._derive``,
after the customer's orders_count, total_spent and purchase dates are updated. It:

1. redeems the coupon the purchase carries (``properties.coupon_code``);
2. earns points: floor(amount x ``points.per_currency_unit``), computed in decimal so
   19.99 at 1 point per unit is 19 points (never 18.999...), a negative amount (a
   refund sent as a purchase) earns nothing. They expire ``points.expire_after`` later;
3. the punch card: every ``punch_card.every``-th purchase (by orders_count) earns
   ``reward_points``, once per multiple;
4. a referral, on the customer's first purchase only;
5. refreshes the cached balance and tier of everyone whose points changed.

It returns the follow-up events, which the router routes after the transaction:
``tier_changed`` (for the buyer, and for a referrer whose reward lifts them) and
``referral_converted`` (for the referrer). Every award has a unique ledger key
derived from the purchase's event id or the customer, so nothing is earned twice.
``on_reversal`` takes a refunded or cancelled purchase's points back (a
``purchase_refunded`` event): see its docstring.
See docs/loyalty.md for the rules in a marketer's words.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.customers.records import points_balance
from core.customers.referral_codes import normalize_code, referrer_by_code
from core.event import EventIn, follow_up_id
from core.loyalty import coupons
from core.loyalty import ledger as loyalty
from language.config import Loyalty
from store.tables import Customer, Event, PointsEntry

log = logging.getLogger(__name__)

COUPON_PROPERTY = "coupon_code"
ORDER_PROPERTY = "order_id"
REFERRAL_PROPERTY = "referral_code"  # on the referee's first purchase: the primary way
REFERRED_BY_ATTRIBUTE = "referred_by"  # a profile attribute (API/CLI/import): the fallback
REVERSAL_EVENT = "purchase_refunded"
REVERSED_PROPERTY = "purchase_event_id"  # on a reversal: the id of the purchase event it reverses


def on_purchase(session: Session, rules: Loyalty, customer: Customer, event: Event, amount: float) -> list[EventIn]:
    """Apply every purchase rule once; return the follow-up events to route."""
    at = event.occurred_at
    redeem_coupon(session, rules, customer, event)
    earned = purchase_points(rules, amount)
    if earned > 0:
        loyalty.award(session, customer, key=f"purchase:{event.id}", points=earned, reason="purchase", at=at,
                      expires_at=loyalty.default_expiry(rules, at), source="purchase")
    punch_card(session, rules, customer, at)
    referral = apply_referral(session, rules, customer, event)
    old, new = loyalty.refresh_points_and_tier(session, customer, rules, _as_of(session, customer.id, at))
    change = loyalty.tier_changed_event(rules, customer.id, old, new, at=at,
                                        event_id=follow_up_id(event.id, "tier"))
    return ([change] if change is not None else []) + referral


def _as_of(session: Session, customer_id: str, at: datetime) -> datetime:
    """The moment to cache balance and tier at: the purchase's, or the customer's latest
    ledger entry's if later (a purchase that arrives late must not roll the cached
    balance back to before newer awards)."""
    latest = session.exec(select(func.max(PointsEntry.occurred_at))
                          .where(PointsEntry.customer_id == customer_id)).one()
    return at if latest is None else max(at, latest)


def purchase_points(rules: Loyalty, amount: float) -> int:
    """floor(amount x per_currency_unit), exactly as written in decimal; never negative."""
    try:
        points = (Decimal(str(amount)) * Decimal(str(rules.points.per_currency_unit))).to_integral_value(ROUND_FLOOR)
    except InvalidOperation:  # nan, inf
        return 0
    return max(int(points), 0)


def punch_card(session: Session, rules: Loyalty, customer: Customer, at: datetime) -> bool:
    """Every N-th purchase (N, 2N, ...) earns the reward once; True if it did now."""
    card = rules.punch_card
    if card is None or card.reward_points <= 0 or customer.orders_count <= 0:
        return False
    if customer.orders_count % card.every:
        return False
    return loyalty.award(session, customer, key=f"punch-card:{customer.id}:{customer.orders_count}",
                         points=card.reward_points, reason=f"punch card: purchase #{customer.orders_count}",
                         at=at, expires_at=loyalty.default_expiry(rules, at), source="punch_card")


def redeem_coupon(session: Session, rules: Loyalty, customer: Customer, event: Event) -> bool:
    """Redeem the purchase's coupon (core.loyalty.coupons.redeem, as the checkout route
    does); True if it was, now or before for the same order.

    The order is ``properties.order_id``, else the event id: a code the checkout already
    redeemed for this order is not redeemed twice. Only the customer's own code (codes are
    personal: one sent to someone else is left for its owner), not redeemed for another
    order and not expired when the purchase was made. Anything else is ignored (logged):
    the purchase itself always counts.
    """
    properties = event.properties or {}
    code = normalize_code(properties.get(COUPON_PROPERTY))
    if code is None:
        return False
    order = properties.get(ORDER_PROPERTY)
    order_id = str(order)[:128] if isinstance(order, str | int) and not isinstance(order, bool) else event.id
    result = coupons.redeem(session, code, order_id=order_id, at=event.occurred_at, coupons=rules.coupons,
                            customer_id=customer.id, event_id=event.id)
    if result.redeemed:
        return True
    log.info("purchase %s: coupon code not redeemed (%s)", event.id, result.state.reason)
    return False


def apply_referral(session: Session, rules: Loyalty, referee: Customer, event: Event) -> list[EventIn]:
    """On the referee's first purchase, reward both sides once and announce it.

    The referrer is found by the referral code on the purchase (``properties.
    referral_code``), else by the referee's ``attributes.referred_by`` (a code too).
    Refused: no referral program, not the first purchase, an unknown code, the
    customer's own code or a referrer with the same phone number.
    """
    if rules.referral is None or referee.orders_count != 1:
        return []
    code = (event.properties or {}).get(REFERRAL_PROPERTY) or (referee.attributes or {}).get(REFERRED_BY_ATTRIBUTE)
    if not code:
        return []
    referrer = referrer_by_code(session, code, for_update=True)
    if referrer is None:
        log.info("purchase %s: unknown referral code", event.id)
        return []
    if referrer.id == referee.id or (referee.phone and referrer.phone == referee.phone):
        log.info("purchase %s: self-referral refused", event.id)
        return []
    at = event.occurred_at
    expires = loyalty.default_expiry(rules, at)
    key = f"referral:{referee.id}"
    rewarded = select(PointsEntry.id).where(col(PointsEntry.key).in_([f"{key}:referee", f"{key}:referrer"]))
    if session.exec(rewarded).first() is not None:
        return []  # once per referee, ever
    if rules.referral.referee_points > 0:
        loyalty.award(session, referee, key=f"{key}:referee", points=rules.referral.referee_points,
                      reason=f"referral: welcome (referred by {referrer.id})", at=at, expires_at=expires,
                      source="referral")
    if rules.referral.referrer_points > 0:
        loyalty.award(session, referrer, key=f"{key}:referrer", points=rules.referral.referrer_points,
                      reason=f"referral: {referee.id} made their first purchase", at=at, expires_at=expires,
                      source="referral")
    old, new = loyalty.refresh_points_and_tier(session, referrer, rules, _as_of(session, referrer.id, at))
    events = [EventIn(id=f"{key}:converted", type="referral_converted", customer_id=referrer.id, occurred_at=at,
                      properties={"referee_id": referee.id, "referral_code": referrer.referral_code,
                                  "points": rules.referral.referrer_points,
                                  "referee_points": rules.referral.referee_points, "purchase_event_id": event.id})]
    change = loyalty.tier_changed_event(rules, referrer.id, old, new, event_id=f"{key}:referrer:tier", at=at)
    return events + ([change] if change is not None else [])


def on_reversal(session: Session, rules: Loyalty, customer: Customer, event: Event) -> list[EventIn]:
    """A refund or cancellation (``purchase_refunded``): take back the points that purchase
    earned, at most what the customer still has (never below zero).

    ``properties.purchase_event_id`` names the purchase; ``properties.amount`` (optional)
    the sum refunded: without it everything the purchase earned is taken back, with it the
    points that sum would have earned. Several partial refunds of one order never take back
    more than it earned. Each reversal event is applied once (the ledger key is its id);
    the deduction lapses when the points it takes back would have. A purchase never seen
    (or that earned nothing) takes nothing. Totals (orders, spend) are left as they were.
    """
    properties = event.properties or {}
    purchase_id = properties.get(REVERSED_PROPERTY)
    if not isinstance(purchase_id, str) or not purchase_id:
        log.info("reversal %s: no purchase_event_id, nothing taken back", event.id)
        return []
    earned_entry = session.exec(select(PointsEntry).where(PointsEntry.key == f"purchase:{purchase_id}",
                                                          PointsEntry.customer_id == customer.id)).first()
    if earned_entry is None or earned_entry.points <= 0:
        return []
    prefix = f"reversal:{purchase_id}:"
    taken = -int(session.exec(select(func.coalesce(func.sum(PointsEntry.points), 0))
                              .where(col(PointsEntry.key).startswith(prefix, autoescape=True))).one())
    amount = properties.get("amount")
    wanted = purchase_points(rules, amount) if isinstance(amount, int | float) and not isinstance(amount, bool) \
        else earned_entry.points
    at = event.occurred_at
    as_of = _as_of(session, customer.id, at)
    balance = max(points_balance(session, customer.id, as_of), 0)
    points = min(wanted, earned_entry.points - taken, balance)
    if points <= 0:
        return []
    loyalty.award(session, customer, key=f"{prefix}{event.id}"[:200], points=-points,
                  reason=f"reversal: purchase {purchase_id} refunded", at=at, expires_at=earned_entry.expires_at,
                  source="reversal")
    old, new = loyalty.refresh_points_and_tier(session, customer, rules, as_of)
    change = loyalty.tier_changed_event(rules, customer.id, old, new, at=at, event_id=follow_up_id(event.id, "tier"))
    return [change] if change is not None else []
