"""The packaged migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, inspect

from marketsync.core.store import Store, migrate
from marketsync.core.store.models import Base


def _diff(store: Store, metadata: MetaData = Base.metadata) -> list:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)


def test_fresh_database_has_no_revision(store_url: str) -> None:
    """A database never migrated reports no revision and needs an upgrade."""
    with Store(store_url) as store:
        assert store.revision() is None
        assert store.needs_upgrade()
        assert inspect(store.engine).get_table_names() == []


def test_upgrade_creates_every_model_table(store: Store) -> None:
    """After upgrade() every table of the models exists and the revision is the head."""
    tables = set(inspect(store.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
    assert store.revision() == migrate.head()
    assert not store.needs_upgrade()


def test_migrated_schema_matches_models(store: Store) -> None:
    """alembic's autogenerate comparison finds nothing between migrations and models."""
    assert _diff(store) == []


def test_comparison_would_notice_a_model_change(store: Store) -> None:
    """The comparison above is not vacuous: a table missing from the migrations shows up."""
    metadata = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    Table("not_migrated", metadata, Column("id", Integer, primary_key=True))
    diff = _diff(store, metadata)
    assert [entry[0] for entry in diff] == ["add_table"]
    assert diff[0][1].name == "not_migrated"


def test_upgrade_is_idempotent(store: Store) -> None:
    """Upgrading an up-to-date database changes nothing and keeps the data."""
    from sqlalchemy import text

    with store.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO products (sku, on_hand, reserved, created_at, updated_at) "
                 "VALUES ('A-1', 3, 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')")
        )
    store.upgrade()
    store.upgrade()
    assert store.revision() == migrate.head()
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT on_hand FROM products")).scalar_one() == 3


def test_upgrade_from_url_and_current(store_url: str) -> None:
    """migrate.upgrade/current also accept a URL, for the CLI's `db upgrade|current`."""
    assert migrate.current(store_url) is None
    migrate.upgrade(store_url)
    assert migrate.current(store_url) == migrate.head()


def test_downgrade_to_base_and_back(store_url: str) -> None:
    """The first revision can be undone completely, so a bad release can be rolled back."""
    from alembic import command

    with Store(store_url) as store:
        store.upgrade()
        with store.engine.begin() as connection:
            command.downgrade(migrate.alembic_config(connection), "base")
        assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}
        store.upgrade()
        assert _diff(store) == []


def test_quarantine_migration_scrubs_buyer_data_from_existing_rows(store_url: str) -> None:
    """Rows quarantined before issue 12 held the whole order; after the upgrade no buyer
    name, e-mail or address is left, and ids, times, SKUs and amounts are."""
    import json

    from alembic import command
    from sqlalchemy import text

    raw = {"orderId": "305-1", "createdTime": "1995-06-15T09:30:00Z",
           "buyer": {"buyerName": "Erika Mustermann", "buyerEmail": "erika@example.invalid"},
           "recipient": {"deliveryAddress": {"name": "Erika Mustermann",
                                             "addressLine1": "Heidestr. 17", "postalCode": "51147"}},
           "orderItems": [{"orderItemId": "1", "quantityOrdered": 2,
                           "product": {"sellerSku": "MUG-1", "title": "Mug"}}]}
    with Store(store_url) as store:
        with store.engine.begin() as connection:
            command.upgrade(migrate.alembic_config(connection), "quarantine_scrub-1")
            connection.execute(text(
                "INSERT INTO accounts (name, channel, created_at, updated_at) "
                "VALUES ('eu', 'amazon', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
            connection.execute(text(
                "INSERT INTO integrations (alias, channel, account_id, marketplace, state, "
                "state_changed_at, enabled, created_at, updated_at) SELECT 'amazon-de', "
                "'amazon', id, 'DE', 'LIVE', '2026-01-01 00:00:00', true, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00' FROM accounts"))
            connection.execute(text(
                "INSERT INTO quarantine (integration_id, kind, record_id, reason, raw, times_seen, "
                "created_at, last_seen_at) SELECT id, 'import_orders', '305-1', 'ancient', :raw, 1, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00' FROM integrations"),
                {"raw": json.dumps(raw)})
        store.upgrade()
        with store.engine.connect() as connection:
            stored = connection.execute(text("SELECT raw FROM quarantine")).scalar_one()
    stored = stored if isinstance(stored, dict) else json.loads(stored)
    text_form = json.dumps(stored)
    for personal in ("Erika", "erika@", "Heidestr", "51147"):
        assert personal not in text_form
    assert stored["orderId"] == "305-1" and stored["createdTime"].startswith("1995")
    assert stored["buyer"] == "<object>" and stored["recipient"] == "<object>"
    assert stored["orderItems"][0]["product"]["sellerSku"] == "MUG-1"
    assert stored["orderItems"][0]["quantityOrdered"] == 2
