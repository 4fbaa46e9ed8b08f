"""A plugin's state in the core's database: counts two writers add to, expiry, scopes,
and the same behaviour from the in-memory ``PluginState`` plugins get outside the daemon."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio

from marketsync.core import clock
from marketsync.core.runtime.plugin_state import StoredState
from marketsync.core.store import Store
from marketsync.core.types import PluginState


@pytest.fixture(params=["stored", "memory"])
def make_state(request, store: Store):
    if request.param == "memory":
        shared: dict[str, PluginState] = {}
        return lambda plugin, scope: shared.setdefault(f"{plugin}/{scope}", PluginState())
    return lambda plugin, scope: StoredState(store, plugin, scope)


async def test_counts_add_up_and_come_back_for_a_new_reader(make_state):
    state = make_state("ebay", "account:shop")
    assert await state.add({"a": 2, "b": 1}) == {"a": 2, "b": 1}
    assert await state.add({"a": 3}) == {"a": 5}
    assert await state.add({"a": -1}) == {"a": 4}  # a claim given back
    again = make_state("ebay", "account:shop")  # another process, the same database
    assert await again.counts(["a", "b", "c"]) == {"a": 4, "b": 1, "c": 0}


async def test_values_round_trip_and_none_deletes(make_state):
    state = make_state("amazon", "integration:amazon-de")
    await state.put({"types/MUG": {"productType": "DRINKING_CUP"}, "n": 3})
    assert await state.get(["types/MUG", "n", "missing"]) == {
        "types/MUG": {"productType": "DRINKING_CUP"}, "n": 3}
    await state.put({"n": None})
    assert await state.get(["n"]) == {}


async def test_an_expired_entry_reads_as_absent_and_counts_start_again(make_state,
                                                                      autojump_clock):
    state = make_state("ebay", "account:shop")
    ends = clock.now() + timedelta(hours=1)
    await state.add({"day": 7}, expires_at=ends)
    await state.put({"note": "x"}, expires_at=ends)
    assert await state.counts(["day"]) == {"day": 7}
    await trio.sleep(3601)
    assert await state.counts(["day"]) == {"day": 0}
    assert await state.get(["note"]) == {}
    assert await state.add({"day": 1}, expires_at=clock.now() + timedelta(hours=1)) == {"day": 1}


async def test_scopes_and_plugins_do_not_see_each_other(make_state):
    await make_state("ebay", "account:a").add({"k": 1})
    await make_state("ebay", "account:b").add({"k": 10})
    await make_state("amazon", "account:a").add({"k": 100})
    assert await make_state("ebay", "account:a").counts(["k"]) == {"k": 1}
    assert await make_state("ebay", "account:b").counts(["k"]) == {"k": 10}


async def test_two_writers_adding_at_once_both_count(store: Store):
    """Two replicas claim revisions of one listing at the same moment: none is lost."""
    first, second = StoredState(store, "ebay", "account:s"), StoredState(store, "ebay", "account:s")

    async def claim(state, n):
        for _ in range(n):
            await state.add({"listing": 1})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(claim, first, 20)
        nursery.start_soon(claim, second, 20)
    assert await first.counts(["listing"]) == {"listing": 40}


async def test_a_bad_key_or_value_is_refused_with_its_name(store: Store):
    state = StoredState(store, "ebay", "account:s")
    with pytest.raises(ValueError, match="key"):
        await state.add({"x" * 201: 1})
    with pytest.raises(ValueError, match="'when'.*not JSON"):
        await state.put({"when": object()})
