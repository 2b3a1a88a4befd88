"""erasures (the audit of erasure requests), pseudonym_keys, and phone_suppressions.phone
wide enough for an erased number's keyed hash

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import store.types
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('erasures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('requested_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erasures_customer_id'), ['customer_id'], unique=False)
    op.create_table('pseudonym_keys',
    sa.Column('id', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('created_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('phone_suppressions', schema=None) as batch_op:
        batch_op.alter_column('phone', existing_type=sa.String(length=20), type_=sa.String(length=80),
                              existing_nullable=False)


def downgrade() -> None:
    # A hashed suppression does not fit the old column: it goes (the number is unknown).
    op.execute("DELETE FROM phone_suppressions WHERE phone LIKE 'hmac:%'")
    with op.batch_alter_table('phone_suppressions', schema=None) as batch_op:
        batch_op.alter_column('phone', existing_type=sa.String(length=80), type_=sa.String(length=20),
                              existing_nullable=False)
    op.drop_table('pseudonym_keys')
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_erasures_customer_id'))
    op.drop_table('erasures')
