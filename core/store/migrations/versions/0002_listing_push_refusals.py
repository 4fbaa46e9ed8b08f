"""listings remember a refused stock or price push and when to try again

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 06:00:00

A listing the channel refuses (deleted there, suppressed, invalid) stayed pending and was
sent again by the next push two seconds later (a price: two minutes), for as long as the
refusal lasted. The refusal's reason and a doubling retry time are kept on the listing
instead, separately for stock and price.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('push_error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('push_refusals', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('push_retry_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('price_error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('price_refusals', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('price_retry_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_column('price_retry_at')
        batch_op.drop_column('price_refusals')
        batch_op.drop_column('price_error')
        batch_op.drop_column('push_retry_at')
        batch_op.drop_column('push_refusals')
        batch_op.drop_column('push_error')
