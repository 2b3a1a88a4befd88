"""Shopify's webhooks as a Plan (core.intake.commerce): one verified payload, by topic.

- ``orders/paid``, and ``orders/create`` once its payment is paid or authorized:
  ``purchase`` with id ``shopify:order:<order id>``, so an order is one purchase however
  many of the two arrive (a pending ``orders/create`` waits for ``orders/paid``);
- ``orders/cancelled``: ``purchase_refunded`` taking back all the order's points;
  ``refunds/create``: ``purchase_refunded`` for the sum refunded (one per refund id);
- ``checkouts/create|update``: ``cart_updated`` with the checkout token as ``cart_id``, and
  once per checkout ``cart_abandoned`` (id ``shopify:checkout:<token>``): the cart reminder,
  keyed by the token, waits Shopify's abandonment delay and more itself, and the order
  (its ``checkout_token`` as ``cart_id``) ends that run;
- ``customers/create|update``: the profile, and ``sms_marketing_consent`` as consent
  (from API version 2025-01 that comes in ``customers_marketing_consent/update``).

Customers are ``shopify-<Shopify customer id>``; anything without a customer is ignored.
"""

from __future__ import annotations

from typing import Any

from core.event import EventIn
from core.intake.commerce import MAX_ITEMS, PENDING_CUSTOMER, Consent, Plan, line_item, money, platform_id, text, when
from core.intake.profiles import ProfileChange
from core.loyalty.rules import COUPON_PROPERTY, ORDER_PROPERTY, REVERSAL_EVENT, REVERSED_PROPERTY

SOURCE = "shopify"
COUNTED_ON_CREATE = {"paid", "partially_paid", "authorized"}  # else orders/paid makes the purchase
CONSENT_STATES = {"subscribed": "opted_in", "unsubscribed": "opted_out"}  # not_subscribed, pending: no change


def customer_id(customer: Any) -> str | None:
    if not isinstance(customer, dict):
        return None
    shopify_id = platform_id(customer.get("id"))
    return f"shopify-{shopify_id}" if shopify_id else None


def order_event_id(order_id: str) -> str:
    return f"shopify:order:{order_id}"


def plan(topic: str, payload: dict[str, Any]) -> Plan:
    handler = _TOPICS.get(topic)
    if handler is None:
        return Plan(ignored=f"topic {topic[:64]!r} is not one the engine maps")
    return handler(topic, payload)


def _order(topic: str, order: dict[str, Any]) -> Plan:
    who, order_id = customer_id(order.get("customer")), platform_id(order.get("id"))
    if who is None or order_id is None:
        return Plan(ignored="an order without a customer (or an id)")
    if topic == "orders/create" and order.get("financial_status") not in COUNTED_ON_CREATE:
        return Plan(ignored="an order not paid yet: orders/paid makes the purchase")
    items = [item for item in (line_item(li.get("title") or li.get("sku"), li.get("product_type"),
                                         li.get("quantity"), li.get("price"))
                               for li in order.get("line_items") or [] if isinstance(li, dict)) if item]
    properties: dict[str, Any] = {ORDER_PROPERTY: order_id, "amount": money(order.get("total_price")) or 0.0,
                                  "currency": text(order.get("currency"), 3), "items": items[:MAX_ITEMS]}
    codes = [text(d.get("code"), 64) for d in order.get("discount_codes") or [] if isinstance(d, dict)]
    if any(codes):
        properties[COUPON_PROPERTY] = next(c for c in codes if c)
    token = platform_id(order.get("checkout_token"))
    if token:
        properties["cart_id"] = token  # ends the abandoned-cart run of this checkout
    at = when(order.get("processed_at")) or when(order.get("created_at"))
    return Plan(customer_id=who, events=[EventIn(id=order_event_id(order_id), type="purchase", customer_id=who,
                                                 occurred_at=at, properties=properties)])


def _cancelled(topic: str, order: dict[str, Any]) -> Plan:
    who, order_id = customer_id(order.get("customer")), platform_id(order.get("id"))
    if who is None or order_id is None:
        return Plan(ignored="an order without a customer (or an id)")
    return Plan(customer_id=who, events=[EventIn(
        id=f"{order_event_id(order_id)}:cancelled", type=REVERSAL_EVENT, customer_id=who,
        occurred_at=when(order.get("cancelled_at")),
        properties={REVERSED_PROPERTY: order_event_id(order_id), ORDER_PROPERTY: order_id, "reason": "cancelled"})])


def _refund(topic: str, refund: dict[str, Any]) -> Plan:
    # A refund names its order, not the customer: the customer is the order's purchase's.
    order_id, refund_id = platform_id(refund.get("order_id")), platform_id(refund.get("id"))
    if order_id is None or refund_id is None:
        return Plan(ignored="a refund without an order id (or an id)")
    refunded = sum(money(t.get("amount")) or 0.0 for t in refund.get("transactions") or []
                   if isinstance(t, dict) and t.get("kind") == "refund" and t.get("status") == "success")
    return Plan(customer_of=order_event_id(order_id), events=[EventIn(
        id=f"shopify:refund:{refund_id}", type=REVERSAL_EVENT, customer_id=PENDING_CUSTOMER,
        occurred_at=when(refund.get("created_at")),
        properties={REVERSED_PROPERTY: order_event_id(order_id), ORDER_PROPERTY: order_id, "amount": refunded,
                    "reason": "refunded"})])


def _checkout(topic: str, checkout: dict[str, Any]) -> Plan:
    who, token = customer_id(checkout.get("customer")), platform_id(checkout.get("token"))
    if who is None or token is None:
        return Plan(ignored="a checkout without a known customer (or a token)")
    if checkout.get("completed_at"):
        return Plan(ignored="a completed checkout: its order makes the purchase")
    updated = when(checkout.get("updated_at")) or when(checkout.get("created_at"))
    properties = {"cart_id": token, "amount": money(checkout.get("total_price")),
                  "currency": text(checkout.get("currency"), 3)}
    url = checkout.get("abandoned_checkout_url")
    if isinstance(url, str) and url.startswith("https://") and len(url) <= 2048:
        properties["cart_url"] = url
    stamp = platform_id(updated.strftime("%Y%m%dT%H%M%S") if updated else None) or "0"
    return Plan(customer_id=who, events=[
        EventIn(id=f"shopify:checkout:{token}:{stamp}", type="cart_updated", customer_id=who, occurred_at=updated,
                properties=properties),
        # One per checkout (later updates are duplicates): the journeys decide when it is abandoned.
        EventIn(id=f"shopify:checkout:{token}", type="cart_abandoned", customer_id=who, occurred_at=updated,
                properties=dict(properties))])


def _customer(topic: str, customer: dict[str, Any]) -> Plan:
    who = customer_id(customer)
    if who is None:
        return Plan(ignored="a customer without an id")
    profile = ProfileChange(phone=text(customer.get("phone"), 32), email=text(customer.get("email"), 254),
                            first_name=text(customer.get("first_name"), 100),
                            last_name=text(customer.get("last_name"), 100))
    return Plan(customer_id=who, profile=profile, consent=sms_consent(customer.get("sms_marketing_consent")))


def _consent_update(topic: str, payload: dict[str, Any]) -> Plan:
    """customers_marketing_consent/update: the consent alone. Its payload names the customer
    as ``customer_id`` and the number as ``phone_number`` (``id``/``phone`` are taken too)."""
    customer = {"id": payload.get("customer_id", payload.get("id")),
                "phone": payload.get("phone_number", payload.get("phone")),
                "sms_marketing_consent": payload.get("sms_marketing_consent")}
    return _customer(topic, customer)


def sms_consent(given: Any) -> Consent | None:
    """``sms_marketing_consent`` {state, opt_in_level, consent_updated_at} as a consent
    statement with its evidence; None for a state that changes nothing or without a time."""
    if not isinstance(given, dict) or given.get("state") not in CONSENT_STATES:
        return None
    at = when(given.get("consent_updated_at"))
    if at is None:
        return None
    level = text(given.get("opt_in_level"), 32) or "unknown"
    evidence = (f"Shopify sms_marketing_consent: state={given['state']}, opt_in_level={level}, "
                f"consent_updated_at={at.isoformat()}")
    return Consent(status=CONSENT_STATES[given["state"]], at=at, evidence=evidence,
                   confirmed=level == "confirmed_opt_in")


_TOPICS = {
    "orders/create": _order, "orders/paid": _order, "orders/cancelled": _cancelled, "refunds/create": _refund,
    "checkouts/create": _checkout, "checkouts/update": _checkout,
    "customers/create": _customer, "customers/update": _customer,
    # From API version 2025-01 the consent comes here, no longer in customers/update.
    "customers_marketing_consent/update": _consent_update,
}
