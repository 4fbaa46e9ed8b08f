"""a check value per PII key, so a wrong or missing pii.key is refused before any row

Revision ID: 0009_pii_key_check
Revises: 0008_account_cursors
Create Date: 2026-12-04 19:45:00

A wrong key used to show up as a 50-line traceback (stored credentials) or not at all
(new buyer data silently not stored, old rows unreadable). A known value sealed with each
key that sealed data here lets the daemon and the CLI prove the key at start.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0009_pii_key_check'
down_revision: Union[str, Sequence[str], None] = '0008_account_cursors'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('pii_key_checks',
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key_id', name=op.f('pk_pii_key_checks'))
    )


def downgrade() -> None:
    op.drop_table('pii_key_checks')
