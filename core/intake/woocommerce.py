"""WooCommerce's webhooks as a Plan (core.intake.commerce).

- ``order.created`` / ``order.updated`` with status ``processing`` or ``completed``:
  ``purchase`` with id ``woocommerce:order:<order id>`` (one per order, however many
  updates arrive); status ``refunded`` or ``cancelled``: ``purchase_refunded`` taking
  back all the order's points (once per order);
- ``customer.created`` / ``customer.updated``: the profile (WooCommerce has no SMS
  consent of its own: consent is not synced).

Customers are ``woocommerce-<customer id>``; guest orders (customer 0) are ignored.
"""

from __future__ import annotations

from typing import Any

from core.event import EventIn
from core.intake.commerce import MAX_ITEMS, Plan, line_item, money, platform_id, text, when
from core.intake.profiles import ProfileChange
from core.loyalty.rules import COUPON_PROPERTY, ORDER_PROPERTY, REVERSAL_EVENT, REVERSED_PROPERTY

SOURCE = "woocommerce"
PAID = {"processing", "completed"}
REVERSED = {"refunded", "cancelled"}


def customer_id(value: Any) -> str | None:
    woo_id = platform_id(value)
    return f"woocommerce-{woo_id}" if woo_id and woo_id != "0" else None


def order_event_id(order_id: str) -> str:
    return f"woocommerce:order:{order_id}"


def plan(topic: str, payload: dict[str, Any]) -> Plan:
    if topic in ("order.created", "order.updated"):
        return _order(payload)
    if topic in ("customer.created", "customer.updated"):
        return _customer(payload)
    return Plan(ignored=f"topic {topic[:64]!r} is not one the engine maps")


def _order(order: dict[str, Any]) -> Plan:
    who, order_id = customer_id(order.get("customer_id")), platform_id(order.get("id"))
    if who is None or order_id is None:
        return Plan(ignored="a guest order (no customer) or one without an id")
    status = order.get("status")
    at = when(order.get("date_paid_gmt") and f"{order['date_paid_gmt']}+00:00") or \
        when(order.get("date_created_gmt") and f"{order['date_created_gmt']}+00:00")
    if status in REVERSED:
        return Plan(customer_id=who, events=[EventIn(
            id=f"{order_event_id(order_id)}:reversed", type=REVERSAL_EVENT, customer_id=who,
            occurred_at=when(order.get("date_modified_gmt") and f"{order['date_modified_gmt']}+00:00"),
            properties={REVERSED_PROPERTY: order_event_id(order_id), ORDER_PROPERTY: order_id,
                        "reason": str(status)})])
    if status not in PAID:
        return Plan(ignored=f"an order with status {str(status)[:32]!r}: not a purchase yet")
    items = [item for item in (line_item(li.get("name") or li.get("sku"), None, li.get("quantity"), li.get("price"))
                               for li in order.get("line_items") or [] if isinstance(li, dict)) if item]
    properties: dict[str, Any] = {ORDER_PROPERTY: order_id, "amount": money(order.get("total")) or 0.0,
                                  "currency": text(order.get("currency"), 3), "items": items[:MAX_ITEMS]}
    codes = [text(c.get("code"), 64) for c in order.get("coupon_lines") or [] if isinstance(c, dict)]
    if any(codes):
        properties[COUPON_PROPERTY] = next(c for c in codes if c)
    return Plan(customer_id=who, events=[EventIn(id=order_event_id(order_id), type="purchase", customer_id=who,
                                                 occurred_at=at, properties=properties)])


def _customer(customer: dict[str, Any]) -> Plan:
    who = customer_id(customer.get("id"))
    if who is None:
        return Plan(ignored="a customer without an id")
    billing = customer.get("billing")
    billing = billing if isinstance(billing, dict) else {}
    return Plan(customer_id=who, profile=ProfileChange(
        phone=text(billing.get("phone"), 32), email=text(customer.get("email"), 254),
        first_name=text(customer.get("first_name"), 100), last_name=text(customer.get("last_name"), 100)))
