"""Purchases as rows: each purchase event becomes a ``purchases`` row and one
``purchase_items`` row per line item, in the event's own transaction, so windows
(``customer.orders_in('90d')``) and habits (``customer.bought('coffee')``) run as indexed SQL."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from core.validation import purchase_items
from store.tables import Event, Purchase, PurchaseItem


def line_items(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """The event's valid line items (checked at the edge; an old stored event may predate that)."""
    try:
        return purchase_items(properties["items"]) if properties.get("items") is not None else []
    except ValueError:
        return []


def record_purchase(session: Session, event: Event, total: float) -> None:
    session.add(Purchase(event_id=event.id, customer_id=event.customer_id, occurred_at=event.occurred_at,
                         total=total))
    for line, item in enumerate(line_items(event.properties or {})):
        session.add(PurchaseItem(event_id=event.id, line=line, customer_id=event.customer_id,
                                 product=item["product"], category=item["category"], quantity=item["quantity"],
                                 price=item["price"], occurred_at=event.occurred_at))
