"""Opt-outs: the per-session suppression list (opt_outs) and messages.mark_chat_read

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'opt_outs',
        sa.Column('session_id', sa.String(length=200), nullable=False),
        sa.Column('number', sa.String(length=32), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('text', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('session_id', 'number'),
    )
    op.add_column('messages', sa.Column('mark_chat_read', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column('messages', 'mark_chat_read')
    op.drop_table('opt_outs')
