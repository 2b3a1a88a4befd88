"""the link's run, journey, version and step on clicks: the journey report counts a step's
clicks from the clicks table alone (an index-only GROUP BY), not by joining every clicked
link to the links table

Existing clicks are back-filled from their link.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (('enrollment_id', 40), ('journey_id', 64), ('journey_version', 32), ('step_id', 64))
INDEX = ('ix_clicks_report', 'clicks', ['journey_id', 'journey_version', 'step_id', 'bot', 'enrollment_id'])


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    for name, length in COLUMNS:
        op.add_column('clicks', sa.Column(name, sa.String(length=length), nullable=True))
    if postgres:
        values = ', '.join(f'{name} = links.{name}' for name, _ in COLUMNS)
        op.execute(f'UPDATE clicks SET {values} FROM links WHERE links.code = clicks.link_code')
    else:
        names = ', '.join(name for name, _ in COLUMNS)
        picked = ', '.join(f'links.{name}' for name, _ in COLUMNS)
        op.execute(f'UPDATE clicks SET ({names}) = (SELECT {picked} FROM links WHERE links.code = clicks.link_code)')
    op.create_index(*INDEX, unique=False)
    if postgres:
        op.execute('ANALYZE clicks')


def downgrade() -> None:
    op.drop_index(INDEX[0], table_name=INDEX[1])
    for name, _ in reversed(COLUMNS):
        op.drop_column('clicks', name)
