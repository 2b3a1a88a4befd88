"""the issuing text's run, journey, version and step on coupons: the journey report counts
a step's coupons from the coupons table alone (an index-only GROUP BY), not by joining
every text of the journey on a key cut out of the coupon's

Existing coupons are back-filled from the text (messages) or email (email_messages) whose
key + ":" + series is their key, for the same customer (the join the report made);
coupons of rewards and other origins stay NULL.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (('enrollment_id', 40), ('journey_id', 64), ('journey_version', 32), ('step_id', 64))
INDEX = ('ix_coupons_report', 'coupons', ['journey_id', 'journey_version', 'step_id', 'enrollment_id', 'redeemed_at'])
# The issuing row's key, cut out of the coupon's (activities/sending.py: <text key>:<series>).
TEXT_KEY = 'substr(coupons.key, 1, length(coupons.key) - length(coupons.series) - 1)'


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    for name, length in COLUMNS:
        op.add_column('coupons', sa.Column(name, sa.String(length=length), nullable=True))
    names = ', '.join(name for name, _ in COLUMNS)
    for table in ('messages', 'email_messages'):
        issued_by = (f"t.key = {TEXT_KEY} AND coupons.key = t.key || ':' || coupons.series "
                     "AND t.customer_id = coupons.customer_id AND t.journey_id IS NOT NULL")
        if postgres:
            values = ', '.join(f'{name} = t.{name}' for name, _ in COLUMNS)
            op.execute(f'UPDATE coupons SET {values} FROM {table} AS t WHERE {issued_by} '
                       'AND coupons.journey_id IS NULL')
        else:
            picked = ', '.join(f't.{name}' for name, _ in COLUMNS)
            op.execute(f'UPDATE coupons SET ({names}) = (SELECT {picked} FROM {table} AS t WHERE {issued_by}) '
                       f'WHERE coupons.journey_id IS NULL AND EXISTS (SELECT 1 FROM {table} AS t WHERE {issued_by})')
    op.create_index(*INDEX, unique=False)
    if postgres:
        op.execute('ANALYZE coupons')


def downgrade() -> None:
    op.drop_index(INDEX[0], table_name=INDEX[1])
    for name, _ in reversed(COLUMNS):
        op.drop_column('coupons', name)
