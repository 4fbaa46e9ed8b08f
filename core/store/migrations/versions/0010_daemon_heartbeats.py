"""daemon heartbeats, so status can tell a stopped or hung daemon from a running one

Revision ID: daemon_heartbeats
Revises: 0009_pii_key_check
Create Date: 2026-12-04 19:50:00

After the daemon stopped, `status` and the page still said LIVE ("next 48s ago"): they
read states from the database, where nothing said the daemon was gone.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'daemon_heartbeats'
down_revision: Union[str, Sequence[str], None] = '0009_pii_key_check'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'daemon_heartbeats',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('owner', sa.String(length=200), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('beat_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_daemon_heartbeats')),
        sa.UniqueConstraint('owner', name=op.f('uq_daemon_heartbeats_owner')),
    )


def downgrade() -> None:
    op.drop_table('daemon_heartbeats')
