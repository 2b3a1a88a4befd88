"""rewards and checkout coupons: coupons.redeemed_order_id, and coupon_pool for the
codes a shop's platform makes (imported, issued from there)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import store.types
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('redeemed_order_id', sa.String(length=128), nullable=True))
    op.create_table('coupon_pool',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('series', sa.String(length=32), nullable=False),
    sa.Column('imported_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_index(op.f('ix_coupon_pool_series'), 'coupon_pool', ['series'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_coupon_pool_series'), table_name='coupon_pool')
    op.drop_table('coupon_pool')
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.drop_column('redeemed_order_id')
