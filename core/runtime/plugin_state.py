"""The daemon's ``PluginState``: a plugin's keys in the store, scoped to one account or
integration, so what a plugin counts survives a restart and is shared by the replicas
that serve the account."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from marketsync.core.store import Store
from marketsync.core.store import plugin_state as rows
from marketsync.core.types import PluginState


class StoredState(PluginState):
    """``PluginState`` backed by the ``plugin_state`` table; each call one transaction."""

    def __init__(self, store: Store, plugin: str, scope: str) -> None:
        super().__init__()
        self.store, self.plugin, self.scope = store, plugin, scope

    @classmethod
    def of_account(cls, store: Store, plugin: str, account: str) -> "StoredState":
        return cls(store, plugin, f"account:{account}")

    @classmethod
    def of_integration(cls, store: Store, plugin: str, alias: str) -> "StoredState":
        return cls(store, plugin, f"integration:{alias}")

    async def get(self, keys: Sequence[str]) -> dict[str, Any]:
        return await self.store.read(rows.get, self.plugin, self.scope, list(keys))

    async def put(self, values: Mapping[str, Any], *, expires_at: datetime | None = None) -> None:
        await self.store.run(rows.put, self.plugin, self.scope, dict(values), expires_at)

    async def counts(self, keys: Sequence[str]) -> dict[str, int]:
        return await self.store.read(rows.counts, self.plugin, self.scope, list(keys))

    async def add(self, amounts: Mapping[str, int], *,
                  expires_at: datetime | None = None) -> dict[str, int]:
        return await self.store.run(rows.add, self.plugin, self.scope, dict(amounts), expires_at)
