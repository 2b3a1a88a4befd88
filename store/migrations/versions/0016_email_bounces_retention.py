"""email: email_suppressions (bounces and complaints, by the address's keyed hash) and
email_messages.anonymised_at (retention of email bodies)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import store.types
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('email_suppressions',
    sa.Column('address', sa.String(length=80), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('soft_bounces', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('suppressed_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('address')
    )
    with op.batch_alter_table('email_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('anonymised_at', store.types.UtcDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_email_messages_retention', ['anonymised_at', 'created_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('email_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_email_messages_retention')
        batch_op.drop_column('anonymised_at')
    op.drop_table('email_suppressions')
