"""messages.dispatched_at: when a send task for the message was first enqueued

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('messages', sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True))
    # Rows dispatched before this column existed: their first dispatch time is unknown;
    # their creation time bounds it from below.
    op.execute("UPDATE messages SET dispatched_at = created_at WHERE status IN ('sending', 'scheduled')")


def downgrade() -> None:
    op.drop_column('messages', 'dispatched_at')
