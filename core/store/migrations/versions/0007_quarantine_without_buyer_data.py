"""quarantine rows lose their buyer data and gain a stack summary

Revision ID: quarantine_scrub
Revises: 0006_rate_buckets_shared
Create Date: 2026-12-04 19:45:00

Until now the Amazon plugin quarantined a whole order, buyer name, e-mail and delivery
address included, unencrypted and never purged (issue 12). Every stored ``raw`` is cut
down to the allow-list the store now enforces (ids, times, statuses, SKUs, quantities and
amounts; everything else becomes its JSON type). The rules are copied here, frozen, so
this migration does the same thing however ``core/store/quarantine.py`` changes later.
Downgrading keeps the scrubbed values: deleted buyer data cannot come back.
"""
import re
from typing import Any, Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'quarantine_scrub'
down_revision: Union[str, Sequence[str], None] = '0006_rate_buckets_shared'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

KEEP_WORDS = frozenset({
    "id", "ids", "sku", "skus", "asin", "time", "date", "at", "status", "state", "type",
    "kind", "quantity", "qty", "count", "amount", "total", "price", "currency", "marketplace",
    "program", "programs", "level", "by",
})
PERSONAL_WORDS = frozenset({
    "buyer", "recipient", "address", "name", "mail", "email", "phone", "customer",
    "contact", "billing", "street", "city", "postal", "zip", "postcode", "company", "vat",
    "tax", "purchase", "gift", "note", "message", "comment", "person", "line1", "line2",
    "line3", "district", "county",
})
_WORD = re.compile(r"[A-Z]?[a-z]+\d*|[A-Z]+(?![a-z])\d*|\d+")
_MARKER = re.compile(r"<(object|array|string|number|boolean|null)>")


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (int, "number"), (float, "number"), (str, "string"),
                       (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return f"<{name}>"
    return "<null>"


def scrub(value: Any, key: str | None = None) -> Any:
    words = {w.lower() for w in _WORD.findall(key)} if key else set()
    if words & PERSONAL_WORDS:
        return value if isinstance(value, str) and _MARKER.fullmatch(value) else _json_type(value)
    if isinstance(value, dict):
        return {str(k)[:100]: scrub(v, str(k)) for k, v in list(value.items())[:50]}
    if isinstance(value, list):
        return [scrub(v, key) for v in value[:50]]
    if isinstance(value, str) and _MARKER.fullmatch(value):
        return value
    if key is None or not words & KEEP_WORDS:
        return _json_type(value)
    return value[:100] if isinstance(value, str) else value


def upgrade() -> None:
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trace', sa.Text(), nullable=True))
    quarantine = sa.table('quarantine', sa.column('id', sa.Integer()),
                          sa.column('raw', sa.JSON()))
    connection = op.get_bind()
    rows = connection.execute(sa.select(quarantine.c.id, quarantine.c.raw)).all()
    for row_id, raw in rows:
        if raw is None:
            continue
        cleaned = scrub(raw)
        if cleaned != raw:
            connection.execute(quarantine.update().where(quarantine.c.id == row_id)
                               .values(raw=cleaned))


def downgrade() -> None:
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_column('trace')
