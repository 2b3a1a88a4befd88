"""Checks on what comes in from outside, shared by every edge."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator

_CUSTOMER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def opaque_customer_id(value: str) -> str:
    """Customer ids end up in workflow ids and search attributes, which are never
    encrypted: refuse anything that looks like personal data."""
    if not _CUSTOMER_ID.match(value):
        raise ValueError("must be 1-64 letters, digits or _ . : - (an opaque id, not an email or phone)")
    if value.lstrip("+").replace("-", "").isdigit() and len(value) >= 7:
        raise ValueError("looks like a phone number; use an opaque customer id")
    return value


CustomerId = Annotated[str, AfterValidator(opaque_customer_id)]

EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
_EVENT_ID = re.compile(EVENT_ID_PATTERN)
_DASHED_PHONE = re.compile(r"(?<![A-Za-z0-9])\d{3}[-.]\d{3}[-.]\d{4}(?![A-Za-z0-9])")  # 201-555-0123


def opaque_event_id(value: str) -> str:
    """An event id from outside becomes a signal payload and an event reference in
    Temporal, which is never encrypted: an opaque reference, never an email or a phone
    number (no @, +, spaces or brackets; no 201-555-0123)."""
    if not _EVENT_ID.match(value):
        raise ValueError("must be 1-128 letters, digits or _ . : - starting with a letter or digit "
                         "(an opaque reference such as order-1001, not an email or phone)")
    if _DASHED_PHONE.search(value):
        raise ValueError("looks like it holds a phone number; use an opaque reference such as order-1001")
    return value


EventId = Annotated[str, AfterValidator(opaque_event_id)]


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
MAX_AMOUNT = 10_000_000  # one purchase; beyond it points would overflow and it is surely an error


def require_timezone(value: datetime | None) -> datetime | None:
    """An aware moment within the years the engine can compute with (expiries, windows)."""
    if value is None:
        return value
    if value.tzinfo is None:
        raise ValueError("needs a time zone, e.g. 2026-01-31T10:00:00Z")
    if not EARLIEST <= value <= LATEST:
        raise ValueError("must be between 1970 and 2200")
    return value


def no_nul(value: Any, where: str = "") -> Any:
    """Text the databases can store: PostgreSQL refuses NUL characters in text and JSON."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(f"{where or 'text'} contains a NUL character")
    if isinstance(value, dict):
        for key, item in value.items():
            no_nul(key, where)
            no_nul(item, where)
    if isinstance(value, list):
        for item in value:
            no_nul(item, where)
    return value


def purchase_amount(value: Any) -> float:
    """A purchase's amount: a finite number (or numeric text) up to MAX_AMOUNT."""
    if isinstance(value, bool):
        raise ValueError("amount must be a number")
    try:
        amount = float(value)
    except (TypeError, ValueError):
        raise ValueError("amount must be a number") from None
    if not math.isfinite(amount) or abs(amount) > MAX_AMOUNT:
        raise ValueError(f"amount must be a finite number of at most {MAX_AMOUNT:,}")
    return amount


MAX_ITEMS = 200  # line items of one purchase
MAX_ITEM_TEXT = 64  # a product or category name (the purchase_items columns)
MAX_QUANTITY = 100_000


def _item_text(item: dict[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}.{key} must be non-empty text, e.g. \"coffee\"")
    if len(value) > MAX_ITEM_TEXT:
        raise ValueError(f"{where}.{key} must be at most {MAX_ITEM_TEXT} characters")
    return value


def purchase_items(value: Any) -> list[dict[str, Any]]:
    """A purchase's ``items``: a list of ``{product, category, quantity, price}``, each with
    a product (its name or SKU) or a category or both; quantity a whole number >= 1
    (default 1), price a number >= 0. Returns them normalized; raises ValueError naming
    the item (``items[1].category ...``)."""
    if not isinstance(value, list):
        raise ValueError('items must be a list of line items, e.g. [{"product": "latte", "category": "coffee"}]')
    if len(value) > MAX_ITEMS:
        raise ValueError(f"items holds at most {MAX_ITEMS} line items")
    items = []
    for index, item in enumerate(value):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where} must be an object with a product and/or a category")
        unknown = sorted(set(item) - {"product", "category", "quantity", "price"})
        if unknown:
            raise ValueError(f"{where} has unknown field(s) {', '.join(unknown)} "
                             "(known: product, category, quantity, price)")
        product, category = _item_text(item, "product", where), _item_text(item, "category", where)
        if product is None and category is None:
            raise ValueError(f"{where} needs a product or a category")
        quantity = item.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            raise ValueError(f"{where}.quantity must be a whole number from 1 to {MAX_QUANTITY:,}")
        price = item.get("price")
        if price is not None:
            if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price) \
                    or not 0 <= price <= MAX_AMOUNT:
                raise ValueError(f"{where}.price must be a number from 0 to {MAX_AMOUNT:,}")
            price = float(price)
        items.append({"product": product, "category": category, "quantity": quantity, "price": price})
    return items
