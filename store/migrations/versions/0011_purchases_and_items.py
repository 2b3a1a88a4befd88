"""purchases and purchase_items: windows and line items for segment rules (customer.orders_in('90d'),
customer.bought('coffee')), backfilled from the purchase events already stored

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 01:00:00
"""

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

import store.types
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000


def upgrade() -> None:
    purchases = op.create_table('purchases',
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('occurred_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_index('ix_purchases_customer_occurred', 'purchases', ['customer_id', 'occurred_at'], unique=False)
    items = op.create_table('purchase_items',
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('product', sa.String(length=64), nullable=True),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('price', sa.Float(), nullable=True),
    sa.Column('occurred_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', 'line')
    )
    op.create_index('ix_purchase_items_customer_category', 'purchase_items', ['customer_id', 'category'], unique=False)
    op.create_index('ix_purchase_items_customer_product', 'purchase_items', ['customer_id', 'product'], unique=False)
    _backfill(purchases, items)


def _amount(properties: dict[str, Any]) -> float:
    value = properties.get("amount")
    if isinstance(value, bool) or value is None:
        return 0.0
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return 0.0
    return amount if math.isfinite(amount) and abs(amount) <= 10_000_000 else 0.0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() and len(value) <= 64 else None


def line_items(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """The line items the event path would have stored (core.validation.purchase_items),
    frozen here as of this revision; an item it would refuse is left out."""
    found = properties.get("items")
    if not isinstance(found, list):
        return []
    items = []
    for item in found[:200]:
        if not isinstance(item, dict):
            continue
        product, category = _text(item.get("product")), _text(item.get("category"))
        quantity, price = item.get("quantity", 1), item.get("price")
        if product is None and category is None:
            continue
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 100_000:
            quantity = 1
        if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price) \
                or not 0 <= price <= 10_000_000:
            price = None
        items.append({"product": product, "category": category, "quantity": quantity,
                      "price": None if price is None else float(price)})
    return items


def _backfill(purchases: Any, items: Any) -> None:
    """The purchase events stored so far, as the event path records them from now on
    (core.customers.purchases): an invalid amount counts 0."""
    bind = op.get_bind()
    events = sa.table('events', sa.column('id', sa.String()), sa.column('customer_id', sa.String()),
                      sa.column('type', sa.String()), sa.column('occurred_at', store.types.UtcDateTime()),
                      sa.column('properties', sa.JSON()))
    last = ""
    while True:
        rows = bind.execute(sa.select(events.c.id, events.c.customer_id, events.c.occurred_at, events.c.properties)
                            .where(events.c.type == 'purchase', events.c.id > last)
                            .order_by(events.c.id).limit(BATCH)).all()
        if not rows:
            return
        bind.execute(purchases.insert(), [{"event_id": r.id, "customer_id": r.customer_id,
                                           "occurred_at": r.occurred_at, "total": _amount(r.properties or {})}
                                          for r in rows])
        lines = [{"event_id": r.id, "line": n, "customer_id": r.customer_id, "occurred_at": r.occurred_at, **item}
                 for r in rows for n, item in enumerate(line_items(r.properties or {}))]
        if lines:
            bind.execute(items.insert(), lines)
        last = rows[-1].id


def downgrade() -> None:
    op.drop_index('ix_purchase_items_customer_product', table_name='purchase_items')
    op.drop_index('ix_purchase_items_customer_category', table_name='purchase_items')
    op.drop_table('purchase_items')
    op.drop_index('ix_purchases_customer_occurred', table_name='purchases')
    op.drop_table('purchases')
