"""Leases: one owner at a time, takeover after expiry, and a fence that refuses the old owner."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import trio

from marketsync.core import clock
from marketsync.core.store import Store, leases

NAME = "amazon-de/import_orders"
TTL = 20.0


async def test_one_owner_until_expiry_then_takeover(store: Store, autojump_clock) -> None:
    clock.set_start(datetime(2026, 9, 1, tzinfo=timezone.utc))
    first = await store.run(leases.acquire, NAME, "replica-1", TTL)
    assert first == 1
    assert await store.run(leases.acquire, NAME, "replica-2", TTL) is None
    await trio.sleep(TTL + 1)
    second = await store.run(leases.acquire, NAME, "replica-2", TTL)
    assert second == 2


async def test_renew_keeps_the_lease_only_while_valid(store: Store, autojump_clock) -> None:
    clock.set_start(datetime(2026, 9, 1, tzinfo=timezone.utc))
    token = await store.run(leases.acquire, NAME, "replica-1", TTL)
    for _ in range(5):
        await trio.sleep(TTL / 2)
        assert await store.run(leases.renew, NAME, "replica-1", token, TTL)
    assert await store.run(leases.acquire, NAME, "replica-2", TTL) is None
    await trio.sleep(TTL + 1)  # paused past expiry: renewing is refused
    assert not await store.run(leases.renew, NAME, "replica-1", token, TTL)


async def test_fence_refuses_the_previous_owner(store: Store, autojump_clock) -> None:
    """After a takeover the old token fails check(); the new one passes."""
    clock.set_start(datetime(2026, 9, 1, tzinfo=timezone.utc))
    old = await store.run(leases.acquire, NAME, "replica-1", TTL)
    await store.run(leases.check, NAME, "replica-1", old)
    await trio.sleep(TTL + 1)
    new = await store.run(leases.acquire, NAME, "replica-2", TTL)
    with pytest.raises(leases.LeaseLost, match="token 1 is no longer held by 'replica-1'"):
        await store.run(leases.check, NAME, "replica-1", old)
    await store.run(leases.check, NAME, "replica-2", new)


async def test_release_frees_the_lease_at_once(store: Store, autojump_clock) -> None:
    clock.set_start(datetime(2026, 9, 1, tzinfo=timezone.utc))
    token = await store.run(leases.acquire, NAME, "replica-1", TTL)
    await store.run(leases.release, NAME, token)
    assert await store.run(leases.acquire, NAME, "replica-2", TTL) == token + 1


async def test_racing_replicas_get_one_winner(store: Store) -> None:
    """Several replicas (Stores) acquiring at once: exactly one gets the token."""
    others = [Store(store.url) for _ in range(3)]
    won: list[int] = []
    try:

        async def contend(db: Store, owner: str) -> None:
            token = await db.run(leases.acquire, NAME, owner, TTL)
            if token is not None:
                won.append(token)

        async with trio.open_nursery() as nursery:
            for number, db in enumerate([store, *others]):
                nursery.start_soon(contend, db, f"replica-{number}")
    finally:
        for db in others:
            db.close()
    assert won == [1]
