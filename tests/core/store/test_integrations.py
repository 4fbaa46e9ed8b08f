"""Integration rows follow the configuration and remember their lifecycle state."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta, timezone

import pytest
import trio

from marketsync.core import clock
from marketsync.core.store import Store
from marketsync.core.store import integrations as rows

UTC = timezone.utc
START = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def _ensure_de(session, enabled: bool = True) -> int:
    return rows.ensure_integration(
        session, alias="amazon-de", channel="amazon", account="acme", marketplace="DE",
        enabled=enabled,
    )


async def test_ensure_integration_creates_then_reuses(store: Store) -> None:
    """The first call creates account and integration (CONNECTING); later calls return the
    same id and follow configuration changes."""
    first = await store.run(_ensure_de)
    again = await store.run(_ensure_de)
    assert first == again
    moved = await store.run(
        lambda s: rows.ensure_integration(
            s, alias="amazon-de", channel="amazon", account="acme-eu", marketplace="DE"
        )
    )
    assert moved == first
    status = await store.read(rows.get_state, "amazon-de")
    assert (status.state, status.account, status.marketplace, status.enabled) == (
        "CONNECTING", "acme-eu", "DE", True,
    )


async def test_integrations_of_one_account_share_it(store: Store) -> None:
    def setup(session) -> None:
        _ensure_de(session)
        rows.ensure_integration(
            session, alias="amazon-fr", channel="amazon", account="acme", marketplace="FR"
        )
        rows.set_seller_id(session, "acme", "A2SELLER")

    await store.run(setup)
    states = await store.read(rows.get_states)
    assert [(s.alias, s.account) for s in states] == [("amazon-de", "acme"), ("amazon-fr", "acme")]


async def test_set_state_records_reason_and_change_time(store: Store, autojump_clock) -> None:
    """state_changed_at moves only when the state changes; the reason always follows."""
    clock.set_start(START)
    await store.run(_ensure_de)
    await trio.sleep(60)
    previous = await store.run(rows.set_state, "amazon-de", "RETRY", "timeout", last_error="TLS")
    assert previous == "CONNECTING"
    await trio.sleep(60)
    await store.run(rows.set_state, "amazon-de", "RETRY", "still down")
    status = await store.read(rows.get_state, "amazon-de")
    assert status.state == "RETRY"
    assert status.state_reason == "still down"
    assert status.state_changed_at == START + timedelta(seconds=60)
    assert status.last_error == "TLS"
    await store.run(rows.set_state, "amazon-de", "LIVE")
    status = await store.read(rows.get_state, "amazon-de")
    assert (status.state, status.state_reason, status.last_error) == ("LIVE", None, "TLS")


async def test_set_state_accepts_enum_members_by_name(store: Store) -> None:
    """The lifecycle code may pass its own enum; the member's name is stored."""

    class State(enum.Enum):
        INCOMPLETE = "incomplete"

    await store.run(_ensure_de)
    await store.run(rows.set_state, "amazon-de", State.INCOMPLETE, "consent revoked")
    assert (await store.read(rows.get_state, "amazon-de")).state == "INCOMPLETE"


async def test_unknown_state_and_alias_are_clear_errors(store: Store) -> None:
    await store.run(_ensure_de)
    with pytest.raises(ValueError, match="'SLEEPING' is not one of CONNECTING, LIVE"):
        await store.run(rows.set_state, "amazon-de", "SLEEPING")
    with pytest.raises(rows.UnknownIntegration, match="no integration 'amazon-xx'"):
        await store.run(rows.set_state, "amazon-xx", "LIVE")


async def test_disable_and_reenable(store: Store) -> None:
    """Disabling in the configuration moves to DISABLED; enabling again starts over."""
    await store.run(_ensure_de)
    await store.run(rows.set_state, "amazon-de", "LIVE")
    await store.run(_ensure_de, False)
    assert (await store.read(rows.get_state, "amazon-de")).state == "DISABLED"
    await store.run(_ensure_de, True)
    status = await store.read(rows.get_state, "amazon-de")
    assert (status.state, status.enabled) == ("CONNECTING", True)


async def test_retire_missing_disables_integrations_gone_from_config(store: Store) -> None:
    def setup(session) -> None:
        _ensure_de(session)
        rows.ensure_integration(
            session, alias="amazon-fr", channel="amazon", account="acme", marketplace="FR"
        )

    await store.run(setup)
    assert await store.run(rows.retire_missing, ["amazon-de"]) == ["amazon-fr"]
    assert await store.run(rows.retire_missing, ["amazon-de"]) == []
    fr = await store.read(rows.get_state, "amazon-fr")
    assert (fr.state, fr.state_reason, fr.enabled) == (
        "DISABLED", "removed from the configuration", False,
    )


async def test_account_secret_round_trip(store: Store) -> None:
    """The account's (already encrypted) secret is stored as bytes and read back."""
    await store.run(_ensure_de)
    assert await store.read(rows.account_secret, "acme") is None
    await store.run(rows.set_account_secret, "acme", b"\x00ciphertext\xff")
    assert await store.read(rows.account_secret, "acme") == b"\x00ciphertext\xff"
