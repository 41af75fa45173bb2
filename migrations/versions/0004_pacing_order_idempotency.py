"""pacing per session, per-recipient order, scheduled messages, idempotency keys

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('whatsapp_sessions', sa.Column('pacing', sa.JSON(), nullable=True))
    op.add_column('messages', sa.Column('after_message_id', sa.String(length=40), nullable=True))
    op.add_column('messages', sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('messages', sa.Column('wait_reason', sa.String(length=200), nullable=True))
    op.create_index('ix_messages_after_message_id', 'messages', ['after_message_id'])
    op.create_table(
        'idempotency_keys',
        sa.Column('scope', sa.String(length=64), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=False),
        sa.Column('response', sa.JSON(), nullable=False),
        sa.Column('job_id', sa.String(length=40), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('scope', 'key'),
    )
    op.create_index('ix_idempotency_keys_expires_at', 'idempotency_keys', ['expires_at'])


def downgrade() -> None:
    op.drop_index('ix_idempotency_keys_expires_at', table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
    op.drop_index('ix_messages_after_message_id', table_name='messages')
    op.drop_column('messages', 'wait_reason')
    op.drop_column('messages', 'next_attempt_at')
    op.drop_column('messages', 'after_message_id')
    op.drop_column('whatsapp_sessions', 'pacing')
