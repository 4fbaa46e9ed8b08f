"""listings remember the channel quantity they were first imported with, and when

Revision ID: 0003_listing_opening_stock
Revises: 0002
Create Date: 2026-12-04 19:40:00

A product's opening stock is the channel's quantity plus the units its open merchant
orders held at that moment (Amazon's MFN quantity already excludes them). Orders of that
time may be imported before or after the listing, so the quantity and the snapshot time
are kept on the listing and the opening is recomputed whenever either side arrives.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0003_listing_opening_stock'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opening_quantity', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('opening_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_column('opening_at')
        batch_op.drop_column('opening_quantity')
