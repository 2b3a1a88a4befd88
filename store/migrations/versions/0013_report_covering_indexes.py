"""covering indexes for the journey report (bench/reports.py: 1,000,000 messages)

The report reads only these columns, so PostgreSQL and SQLite answer from the index
alone (no table rows read): the runs of a journey's versions, its texts by run, its
links by run, and a customer's journey texts by time (reply and STOP attribution).
The first and the last replace the narrower indexes of 0009 they start with.

On PostgreSQL also statistics of how journey_version goes with journey_id: without them
the planner takes a journey's versions for a few hundred runs when they are 100,000s,
and picks joins for the few (a reply query went from 0.13 to 0.42 s of CPU). Statistics
objects are not tables or indexes: store/tables.py has no place for them.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 02:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = [
    ('ix_enrollments_report_runs', 'enrollments',
     ['journey_id', 'journey_version', 'entered_at', 'id', 'status', 'outcome', 'converted_at', 'conversion_value']),
    ('ix_messages_report', 'messages',
     ['journey_id', 'enrollment_id', 'step_id', 'status', 'reason', 'counts_toward_caps', 'segments']),
    ('ix_links_report', 'links', ['journey_id', 'code', 'enrollment_id', 'step_id']),
    ('ix_messages_attribution', 'messages',
     ['customer_id', 'sent_at', 'status', 'enrollment_id', 'journey_id', 'step_id']),
]
REPLACED = [  # by the first and the last above (0009)
    ('ix_enrollments_report', 'enrollments', ['journey_id', 'journey_version', 'entered_at']),
    ('ix_messages_customer_sent', 'messages', ['customer_id', 'sent_at']),
]


STATISTICS = 'st_enrollments_journey_version'


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    for name, table, _ in REPLACED:
        op.drop_index(name, table_name=table)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'CREATE STATISTICS {STATISTICS} (dependencies, mcv) ON journey_id, journey_version '
                   'FROM enrollments')
        op.execute('ANALYZE enrollments')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'DROP STATISTICS IF EXISTS {STATISTICS}')
    for name, table, columns in REPLACED:
        op.create_index(name, table, columns, unique=False)
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
