"""run keys: enrollments.run_key (the key's hash) and one active run per journey,
customer and key

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE_KEYED = "status = 'active' AND run_key IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table('enrollments') as batch:
        batch.add_column(sa.Column('run_key', sa.String(length=16), nullable=True))
    op.create_index('uq_enrollments_active_run_key', 'enrollments', ['journey_id', 'customer_id', 'run_key'],
                    unique=True, sqlite_where=sa.text(ACTIVE_KEYED), postgresql_where=sa.text(ACTIVE_KEYED))


def downgrade() -> None:
    op.drop_index('uq_enrollments_active_run_key', table_name='enrollments')
    with op.batch_alter_table('enrollments') as batch:
        batch.drop_column('run_key')
