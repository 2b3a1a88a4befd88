"""inbound_messages (webhook replay protection), clicks.bot and nullable clicks.event_id

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import store.types
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('inbound_messages',
    sa.Column('sid', sa.String(length=64), nullable=False),
    sa.Column('received_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('handled_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('sid')
    )
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bot', sa.String(length=32), nullable=True))
        batch_op.alter_column('event_id', existing_type=sa.String(length=128), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE clicks SET event_id = '' WHERE event_id IS NULL")
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.alter_column('event_id', existing_type=sa.String(length=128), nullable=False)
        batch_op.drop_column('bot')
    op.drop_table('inbound_messages')
