"""plugin state that survives a restart; products and listings carry an MPN

Revision ID: 0011_plugin_state
Revises: daemon_heartbeats
Create Date: 2026-12-04 22:30:00

eBay allows 250 revisions per listing and day; the plugin counted them in process memory,
so a restart forgot them and could pass the limit. ``plugin_state`` is a small key/value
table a plugin reaches through ``Integration.state`` / ``account_state``, scoped by plugin
and account or integration, with an expiry. The same revision adds ``mpn`` to products and
listings (issue #15's SKU → EAN → UPC → MPN matching), so the chain takes one step.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0011_plugin_state'
down_revision: Union[str, Sequence[str], None] = 'daemon_heartbeats'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'plugin_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('plugin', sa.String(length=64), nullable=False),
        sa.Column('scope', sa.String(length=300), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('value', sa.JSON(), nullable=True),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_plugin_state')),
        sa.UniqueConstraint('plugin', 'scope', 'key', name=op.f('uq_plugin_state_plugin_scope_key')),
    )
    with op.batch_alter_table('plugin_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plugin_state_expires_at'), ['expires_at'],
                              unique=False)
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mpn', sa.String(length=70), nullable=True))
        batch_op.create_index(batch_op.f('ix_products_mpn'), ['mpn'], unique=False)
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mpn', sa.String(length=70), nullable=True))
        batch_op.create_index(batch_op.f('ix_listings_mpn'), ['mpn'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_listings_mpn'))
        batch_op.drop_column('mpn')
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_products_mpn'))
        batch_op.drop_column('mpn')
    op.drop_table('plugin_state')
