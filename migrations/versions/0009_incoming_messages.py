"""incoming_messages: what each session received, once per (session, WhatsApp message id)

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'incoming_messages',
        sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True, autoincrement=True),
        sa.Column('id', sa.String(length=40), nullable=False, unique=True),
        sa.Column('session_id', sa.String(length=200), nullable=False),
        sa.Column('wa_message_id', sa.String(length=160), nullable=False),
        sa.Column('wa_serialized', sa.String(length=240), nullable=True),
        sa.Column('sender_number', sa.String(length=32), nullable=True),
        sa.Column('sender_wa_id', sa.String(length=64), nullable=True),
        sa.Column('type', sa.String(length=20), nullable=False),
        sa.Column('text', sa.Text(), nullable=True),
        sa.Column('media_kind', sa.String(length=20), nullable=True),
        sa.Column('media_mimetype', sa.String(length=120), nullable=True),
        sa.Column('media_filename', sa.String(length=255), nullable=True),
        sa.Column('media_size', sa.BigInteger(), nullable=True),
        sa.Column('quoted_wa_message_id', sa.String(length=160), nullable=True),
        sa.Column('in_reply_to_message_id', sa.String(length=40), nullable=True),
        sa.Column('in_reply_to_job_id', sa.String(length=40), nullable=True),
        sa.Column('route', sa.String(length=10), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('session_id', 'wa_message_id', name='uq_incoming_session_wa_message'),
    )


def downgrade() -> None:
    op.drop_table('incoming_messages')
