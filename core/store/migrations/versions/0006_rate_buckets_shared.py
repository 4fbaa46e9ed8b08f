"""rate-limit buckets shared by replicas on one database

Revision ID: 0006_rate_buckets_shared
Revises: 0005_notifications_seen
Create Date: 2026-12-04 19:40:00

Several daemons on one PostgreSQL each had their own rate-limit governor, so together
they could exceed a channel's per-account limits. With a shared backend the governor's
GCRA timestamp for each bucket lives in this table and one statement takes a token.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0006_rate_buckets_shared'
down_revision: Union[str, Sequence[str], None] = '0005_notifications_seen'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('rate_buckets',
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('tat', sa.Double(), nullable=False),
    sa.Column('interval', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_buckets'))
    )


def downgrade() -> None:
    op.drop_table('rate_buckets')
