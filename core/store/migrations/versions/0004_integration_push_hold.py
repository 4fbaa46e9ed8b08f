"""integrations hold their stock pushes for a review or a tripped safety valve

Revision ID: 0004_integration_push_hold
Revises: 0003_listing_opening_stock
Create Date: 2026-12-04 20:00:00

A newly connected integration sends nothing that would change a channel quantity until
the seller accepts (``marketsync stock accept``); a push that would zero or cut too much
at once is held the same way. Integrations that exist already were connected before the
review existed: they start with no hold.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0004_integration_push_hold'
down_revision: Union[str, Sequence[str], None] = '0003_listing_opening_stock'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('integrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('push_hold', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('push_hold_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('push_hold_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('integrations', schema=None) as batch_op:
        batch_op.drop_column('push_hold_at')
        batch_op.drop_column('push_hold_reason')
        batch_op.drop_column('push_hold')
