"""messages.wa_id: the WhatsApp id of the recipient, as WhatsApp's existence query answered it

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('messages', sa.Column('wa_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column('messages', 'wa_id')
