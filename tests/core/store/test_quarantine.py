"""Quarantine keeps one row per bad record however often it comes back."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import trio

from marketsync.core import clock
from marketsync.core.store import Store, quarantine
from marketsync.core.store import integrations as rows
from marketsync.core.types import RejectedRecord

UTC = timezone.utc


async def _integration(store: Store, alias: str = "amazon-de") -> int:
    return await store.run(
        lambda s: rows.ensure_integration(
            s, alias=alias, channel="amazon", account="acme", marketplace=alias[-2:].upper()
        )
    )


async def test_adding_again_updates_instead_of_duplicating(store: Store, autojump_clock) -> None:
    start = datetime(2026, 4, 1, tzinfo=UTC)
    clock.set_start(start)
    integration = await _integration(store)
    await store.run(quarantine.add, integration, "orders", "111-1", "no items", {"id": "111-1"})
    await trio.sleep(300)
    await store.run(quarantine.add, integration, "orders", "111-1", "still no items", {"id": 1})
    [record] = await store.read(quarantine.list_records, integration)
    assert (record.record_id, record.reason, record.raw, record.times_seen) == (
        "111-1", "still no items", {"id": 1}, 2,
    )
    assert record.created_at == start
    assert (record.last_seen_at - start).total_seconds() == 300


async def test_records_without_id_are_fingerprinted(store: Store) -> None:
    """An anonymous bad record is identified by its content, so it is still stored once."""
    integration = await _integration(store)
    bad = RejectedRecord(record_id=None, reason="missing SKU", raw={"qty": 2})
    await store.run(quarantine.add_rejected, integration, "products", bad)
    await store.run(quarantine.add_rejected, integration, "products", bad)
    await store.run(
        quarantine.add_rejected, integration, "products",
        RejectedRecord(record_id=None, reason="missing SKU", raw={"qty": 3}),
    )
    records = await store.read(quarantine.list_records, integration, "products")
    assert sorted(r.times_seen for r in records) == [1, 2]
    assert all(r.record_id.startswith("sha256:") for r in records)


async def test_list_filters_and_release(store: Store) -> None:
    de, fr = await _integration(store), await _integration(store, "amazon-fr")
    await store.run(quarantine.add, de, "orders", "a", "bad")
    await store.run(quarantine.add, de, "products", "a", "bad")
    await store.run(quarantine.add, fr, "orders", "a", "bad")
    assert len(await store.read(quarantine.list_records)) == 3
    assert [(r.integration_id, r.kind) for r in await store.read(quarantine.list_records, de, "orders")] == [
        (de, "orders")
    ]
    [fr_record] = await store.read(quarantine.list_records, fr)
    assert await store.run(quarantine.release, fr_record.id) is True
    assert await store.run(quarantine.release, fr_record.id) is False
    assert await store.read(quarantine.list_records, fr) == []


async def test_raw_values_json_cannot_hold_become_text(store: Store) -> None:
    """A Decimal or datetime in the raw record does not fail the import page."""
    integration = await _integration(store)
    raw = {"price": Decimal("9.99"), "at": datetime(2026, 1, 1, tzinfo=UTC)}
    await store.run(quarantine.add, integration, "orders", "x", "bad price", raw)
    [record] = await store.read(quarantine.list_records)
    assert record.raw == {"price": "9.99", "at": "2026-01-01 00:00:00+00:00"}


async def test_add_tells_whether_the_record_is_new(store: Store) -> None:
    integration = await _integration(store)
    assert await store.run(quarantine.add, integration, "orders", "a", "bad") is True
    assert await store.run(quarantine.add, integration, "orders", "a", "bad") is False


async def test_buyer_data_is_scrubbed_whatever_the_plugin_passes(store: Store) -> None:
    """The store keeps an allow-list: a plugin that passes the whole order leaks nothing."""
    integration = await _integration(store)
    raw = {"orderId": "1", "createdTime": "2026-01-01T00:00:00Z", "programs": 5,
           "buyer": {"buyerName": "Erika Mustermann", "buyerEmail": "erika@example.invalid"},
           "recipient": "Heidestr. 17, 51147 Köln",
           "shippingAddress": {"city": "Köln", "phone": "+49 221 0"},
           "items": [{"sku": "MUG-1", "quantity": 2, "title": "Mug",
                      "price": {"amount": "9.00", "currencyCode": "EUR"}}],
           "giftMessage": "for Erika"}
    await store.run(quarantine.add, integration, "import_orders", "1", "bad", raw)
    [record] = await store.read(quarantine.list_records)
    assert record.raw == {
        "orderId": "1", "createdTime": "2026-01-01T00:00:00Z", "programs": 5,
        "buyer": "<object>", "recipient": "<string>", "shippingAddress": "<object>",
        "items": [{"sku": "MUG-1", "quantity": 2, "title": "<string>",
                   "price": {"amount": "9.00", "currencyCode": "EUR"}}],
        "giftMessage": "<string>",
    }


async def test_old_records_expire_and_the_summary_counts(store: Store, autojump_clock) -> None:
    """Retention is bounded: a record not seen for RETENTION goes; the summary counts the rest
    and shows the newest reasons first."""
    clock.set_start(datetime(2026, 4, 1, tzinfo=UTC))
    integration = await _integration(store)
    await store.run(quarantine.add, integration, "import_orders", "old", "old reason")
    await trio.sleep(quarantine.RETENTION.total_seconds() - 3600)
    for n in range(4):
        await store.run(quarantine.add, integration, "import_orders", f"new-{n}", f"reason {n}")
        await trio.sleep(1)
    summary = (await store.read(quarantine.summaries))[integration]
    assert summary.count == 5
    assert summary.newest == ("new-3: reason 3", "new-2: reason 2", "new-1: reason 1")
    await trio.sleep(2 * 3600)
    assert await store.run(quarantine.expire, clock.now()) == 1
    assert {r.record_id for r in await store.read(quarantine.list_records)} == {
        f"new-{n}" for n in range(4)}
