"""Scoped API keys: api_keys.admin and api_keys.scope; the key that created each session and job

Existing keys become admin keys: they could do everything before.

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('api_keys', sa.Column('admin', sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table('api_keys') as batch:  # SQLite (the demo's database) cannot ALTER a column
        batch.alter_column('admin', server_default=sa.false())
    op.add_column('api_keys', sa.Column('scope', sa.JSON(), nullable=True))
    op.add_column('whatsapp_sessions', sa.Column('api_key_id', sa.String(length=40), nullable=True))
    op.add_column('jobs', sa.Column('api_key_id', sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column('jobs', 'api_key_id')
    op.drop_column('whatsapp_sessions', 'api_key_id')
    op.drop_column('api_keys', 'scope')
    op.drop_column('api_keys', 'admin')
