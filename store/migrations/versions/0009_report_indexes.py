"""indexes for the journey and program reports

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = [
    ('ix_enrollments_report', 'enrollments', ['journey_id', 'journey_version', 'entered_at']),
    ('ix_messages_customer_sent', 'messages', ['customer_id', 'sent_at']),
    ('ix_links_enrollment', 'links', ['enrollment_id']),
    ('ix_events_type_occurred', 'events', ['type', 'occurred_at']),
    ('ix_points_ledger_occurred', 'points_ledger', ['occurred_at']),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
