"""an index for one customer's events of a type in a window (replies_in, the sunset rule)

Without it, a rule such as customer.replies_in('90d') read every reply in the window
for each customer (the type index), so a refresh grew with customers x replies.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 02:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_events_customer_type_occurred', 'events', ['customer_id', 'type', 'occurred_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_events_customer_type_occurred', table_name='events')
