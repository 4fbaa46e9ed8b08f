"""account-scoped import cursors

Revision ID: 0008_account_cursors
Revises: quarantine_scrub
Create Date: 2026-12-04 19:45:00

A channel may now import orders once per account for all its marketplaces (Amazon's
searchOrders), so that import's cursor belongs to the account. The rows are created on
first use from the integrations' own cursors (``core/store/cursors.py``,
``load_account``): which jobs are account-scoped is known only to the running plugins,
not to this migration, and the per-integration rows stay untouched for a downgrade.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0008_account_cursors'
down_revision: Union[str, Sequence[str], None] = 'quarantine_scrub'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('account_cursors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('cursor', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_cursors_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_cursors')),
    sa.UniqueConstraint('account_id', 'kind', name=op.f('uq_account_cursors_account_id_kind'))
    )


def downgrade() -> None:
    op.drop_table('account_cursors')
