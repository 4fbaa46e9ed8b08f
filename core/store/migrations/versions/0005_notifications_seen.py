"""notifications_seen: the ids of channel notifications already acted on

Revision ID: 0005_notifications_seen
Revises: 0004_integration_push_hold
Create Date: 2026-12-04 20:00:00

SQS delivers at least once and Amazon may send a notification twice; the id of each one
acted on is kept so a duplicate only gets deleted from the queue.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0005_notifications_seen'
down_revision: Union[str, Sequence[str], None] = '0004_integration_push_hold'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'notifications_seen',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('notification_id', sa.String(length=128), nullable=False),
        sa.Column('account', sa.String(length=100), nullable=False),
        sa.Column('type', sa.String(length=64), nullable=False),
        sa.Column('subject', sa.String(length=128), nullable=True),
        sa.Column('event_time', sa.DateTime(timezone=True), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('notification_id'),
    )
    with op.batch_alter_table('notifications_seen', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_seen_account', ['account'], unique=False)
        batch_op.create_index('ix_notifications_seen_subject', ['subject'], unique=False)
        batch_op.create_index('ix_notifications_seen_received_at', ['received_at'], unique=False)


def downgrade() -> None:
    op.drop_table('notifications_seen')
