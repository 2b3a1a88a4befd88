"""the run's journey version on messages, links and email_messages, written with the
row: the journey report groups a journey's texts, links and emails by version without
joining enrollments

Existing rows are back-filled from their run. The report indexes of 0013 are rebuilt
with the column, so the report's GROUP BYs are still answered from the index alone;
email_messages gets one of its own (the report counts send_email steps).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ('messages', 'links', 'email_messages')
EMAIL_INDEX = ('ix_email_messages_report', 'email_messages',
               ['journey_id', 'journey_version', 'step_id', 'status', 'reason', 'enrollment_id'])
INDEXES = {  # name: (table, columns before, columns now)
    'ix_messages_report': (
        'messages',
        ['journey_id', 'enrollment_id', 'step_id', 'status', 'reason', 'counts_toward_caps', 'segments'],
        ['journey_id', 'journey_version', 'step_id', 'status', 'reason', 'counts_toward_caps', 'segments',
         'enrollment_id']),
    'ix_messages_attribution': (
        'messages',
        ['customer_id', 'sent_at', 'status', 'enrollment_id', 'journey_id', 'step_id'],
        ['customer_id', 'sent_at', 'status', 'enrollment_id', 'journey_id', 'step_id', 'journey_version']),
    'ix_links_report': (
        'links',
        ['journey_id', 'code', 'enrollment_id', 'step_id'],
        ['journey_id', 'code', 'enrollment_id', 'step_id', 'journey_version']),
}


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    for name, (table, _, _) in INDEXES.items():  # first: the back-fill then has fewer indexes to keep
        op.drop_index(name, table_name=table)
    for table in TABLES:
        op.add_column(table, sa.Column('journey_version', sa.String(length=32), nullable=True))
        if postgres:
            op.execute(f'UPDATE {table} SET journey_version = enrollments.journey_version FROM enrollments '
                       f'WHERE enrollments.id = {table}.enrollment_id')
        else:
            op.execute(f'UPDATE {table} SET journey_version = (SELECT journey_version FROM enrollments '
                       f'WHERE enrollments.id = {table}.enrollment_id) WHERE enrollment_id IS NOT NULL')
    for name, (table, _, columns) in INDEXES.items():
        op.create_index(name, table, columns, unique=False)
    op.create_index(*EMAIL_INDEX, unique=False)
    if postgres:
        for table in TABLES:
            op.execute(f'ANALYZE {table}')


def downgrade() -> None:
    op.drop_index(EMAIL_INDEX[0], table_name=EMAIL_INDEX[1])
    for name, (table, columns, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns, unique=False)
    for table in TABLES:
        op.drop_column(table, 'journey_version')
