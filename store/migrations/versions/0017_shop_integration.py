"""the shop integration: webhook_deliveries (dedupe by delivery id), shop_discounts
(a coupon code's reservation in the platform) and import_cursors (resumable back-fill)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import store.types
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('webhook_deliveries',
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('delivery_id', sa.String(length=80), nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('received_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source', 'delivery_id')
    )
    op.create_index(op.f('ix_webhook_deliveries_received_at'), 'webhook_deliveries', ['received_at'], unique=False)
    op.create_table('shop_discounts',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('series', sa.String(length=32), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('platform_id', sa.String(length=80), nullable=True),
    sa.Column('error', sa.String(length=200), nullable=True),
    sa.Column('created_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_index(op.f('ix_shop_discounts_state'), 'shop_discounts', ['state'], unique=False)
    op.create_table('import_cursors',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('cursor', sa.String(length=2048), nullable=True),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('updated_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('import_cursors')
    op.drop_index(op.f('ix_shop_discounts_state'), table_name='shop_discounts')
    op.drop_table('shop_discounts')
    op.drop_index(op.f('ix_webhook_deliveries_received_at'), table_name='webhook_deliveries')
    op.drop_table('webhook_deliveries')
