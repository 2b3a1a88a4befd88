"""enrollments started_at

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import store.types
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('started_at', store.types.UtcDateTime(timezone=True), nullable=True))
    # Runs entered before this revision were started when they were entered.
    op.execute("UPDATE enrollments SET started_at = entered_at")


def downgrade() -> None:
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.drop_column('started_at')
