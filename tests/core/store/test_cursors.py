"""Import cursors are stored verbatim per (integration, kind) and come back equal."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from marketsync.core.store import Store, cursors
from marketsync.core.store import integrations as rows
from marketsync.core.types import Cursor

UTC = timezone.utc


async def _integration(store: Store, alias: str = "amazon-de") -> int:
    return await store.run(
        lambda s: rows.ensure_integration(
            s, alias=alias, channel="amazon", account="acme", marketplace=alias[-2:].upper()
        )
    )


async def test_missing_cursor_is_empty(store: Store) -> None:
    integration = await _integration(store)
    assert await store.read(cursors.load, integration, "import_orders") == Cursor()


async def test_cursor_round_trip(store: Store) -> None:
    """since (aware), token and state survive the database unchanged."""
    integration = await _integration(store)
    cursor = Cursor(
        since=datetime(2026, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5))),
        token="page-2",
        state={"report_id": "R1", "pages": [1, 2], "nested": {"a": None}},
    )
    await store.run(cursors.save, integration, "import_orders", cursor)
    loaded = await store.read(cursors.load, integration, "import_orders")
    assert loaded == cursor
    assert loaded.since == cursor.since and loaded.since.utcoffset() == timedelta(hours=-5)


async def test_save_replaces_and_kinds_are_separate(store: Store) -> None:
    de, fr = await _integration(store), await _integration(store, "amazon-fr")
    first = Cursor(since=datetime(2026, 1, 1, tzinfo=UTC))
    second = Cursor(since=datetime(2026, 1, 2, tzinfo=UTC), token="t")
    await store.run(cursors.save, de, "import_orders", first)
    await store.run(cursors.save, de, "import_orders", second)
    await store.run(cursors.save, de, "import_products", first)
    assert await store.read(cursors.load, de, "import_orders") == second
    assert await store.read(cursors.load, de, "import_products") == first
    assert await store.read(cursors.load, fr, "import_orders") == Cursor()


async def test_cursor_commits_with_the_page(store: Store) -> None:
    """A unit of work that fails after saving the cursor leaves the old cursor in place."""
    integration = await _integration(store)
    old = Cursor(token="old")
    await store.run(cursors.save, integration, "import_orders", old)

    def store_page_then_fail(session) -> None:
        cursors.save(session, integration, "import_orders", Cursor(token="new"))
        raise RuntimeError("page could not be stored")

    with pytest.raises(RuntimeError):
        await store.run(store_page_then_fail)
    assert await store.read(cursors.load, integration, "import_orders") == old


async def test_reset_forgets_the_cursor(store: Store) -> None:
    integration = await _integration(store)
    await store.run(cursors.save, integration, "import_orders", Cursor(token="x"))
    assert await store.run(cursors.reset, integration, "import_orders") is True
    assert await store.run(cursors.reset, integration, "import_orders") is False
    assert await store.read(cursors.load, integration, "import_orders") == Cursor()


async def test_state_that_is_not_json_is_a_clear_error(store: Store) -> None:
    integration = await _integration(store)
    with pytest.raises(ValueError, match="kind 'import_orders' cannot be stored"):
        await store.run(
            cursors.save, integration, "import_orders", Cursor(state={"when": object()})
        )
