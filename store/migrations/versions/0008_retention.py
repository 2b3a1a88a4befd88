"""retention: anonymised_at on events, messages and links; indexes on the times retention filters on

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import store.types
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, index, the time column and key its batches go in the order of)
RETENTION = (('events', 'ix_events_retention', 'received_at', 'id'),
             ('messages', 'ix_messages_retention', 'created_at', 'id'),
             ('links', 'ix_links_retention', 'created_at', 'code'))


def upgrade() -> None:
    for table, index, at, key in RETENTION:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('anonymised_at', store.types.UtcDateTime(timezone=True), nullable=True))
            batch_op.create_index(index, ['anonymised_at', at, key], unique=False)
    op.create_index('ix_decisions_decided_at', 'decisions', ['decided_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_decisions_decided_at', table_name='decisions')
    for table, index, _at, _key in reversed(RETENTION):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(index)
            batch_op.drop_column('anonymised_at')
