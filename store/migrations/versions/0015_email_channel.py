"""email as a second channel: email_messages, customers.email_consent and
consent_records.channel (existing rows: 'none' and 'sms')

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 02:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import store.types
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('email_messages',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('enrollment_id', sa.String(length=40), nullable=True),
    sa.Column('journey_id', sa.String(length=64), nullable=True),
    sa.Column('step_id', sa.String(length=64), nullable=True),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(), nullable=True),
    sa.Column('body', sa.String(), nullable=True),
    sa.Column('html', sa.String(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('defer_until', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('provider', sa.String(length=16), nullable=True),
    sa.Column('provider_message_id', sa.String(length=255), nullable=True),
    sa.Column('error_code', sa.String(length=16), nullable=True),
    sa.Column('created_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_index(op.f('ix_email_messages_customer_id'), 'email_messages', ['customer_id'], unique=False)
    op.create_index(op.f('ix_email_messages_enrollment_id'), 'email_messages', ['enrollment_id'], unique=False)
    op.create_index(op.f('ix_email_messages_status'), 'email_messages', ['status'], unique=False)
    op.create_index(op.f('ix_email_messages_sent_at'), 'email_messages', ['sent_at'], unique=False)
    # Existing rows get the defaults; the default is then dropped, as the model has none.
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_consent', sa.String(length=16), nullable=False,
                                      server_default='none'))
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=8), nullable=False, server_default='sms'))
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.alter_column('email_consent', server_default=None)
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.alter_column('channel', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.drop_column('channel')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('email_consent')
    op.drop_index(op.f('ix_email_messages_sent_at'), table_name='email_messages')
    op.drop_index(op.f('ix_email_messages_status'), table_name='email_messages')
    op.drop_index(op.f('ix_email_messages_enrollment_id'), table_name='email_messages')
    op.drop_index(op.f('ix_email_messages_customer_id'), table_name='email_messages')
    op.drop_table('email_messages')
