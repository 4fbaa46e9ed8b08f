"""Accounts and integrations as rows: created from the configuration, states persisted.

The configuration file is the source of truth for which integrations exist; these rows
give them stable ids (cursors, orders and listings point at them) and remember what the
daemon learnt (state, seller id, secrets) so that ``marketsync status`` in another process
can show it. Functions take plain values, not config objects, so the config module can
change shape without touching the store.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import INTEGRATION_STATES, Account, IntegrationRow
from .timing import transaction_now
from .upsert import insert_or_update


class UnknownIntegration(LookupError):
    """No integration with that alias or id in the database."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IntegrationStatus:
    """What the store knows about one integration, detached from any session."""

    id: int
    alias: str
    channel: str
    account: str
    marketplace: str
    state: str
    state_reason: str | None
    state_changed_at: datetime
    last_error: str | None
    enabled: bool


def ensure_account(session: Session, *, name: str, channel: str) -> int:
    """The id of account ``name``, created if new; its channel follows the configuration."""
    now = transaction_now()
    insert_or_update(
        session,
        Account,
        {"name": name, "channel": channel, "created_at": now, "updated_at": now},
        conflict=["name"],
    )
    account = session.execute(select(Account).where(Account.name == name)).scalar_one()
    if account.channel != channel:
        account.channel = channel
    return account.id


def ensure_integration(
    session: Session,
    *,
    alias: str,
    channel: str,
    account: str,
    marketplace: str,
    enabled: bool = True,
) -> int:
    """The id of integration ``alias``, created (CONNECTING) or updated to match the
    configuration. Disabling moves it to DISABLED; re-enabling a DISABLED one moves it to
    CONNECTING, so the lifecycle starts over."""
    account_id = ensure_account(session, name=account, channel=channel)
    now = transaction_now()
    insert_or_update(
        session,
        IntegrationRow,
        {
            "alias": alias,
            "channel": channel,
            "account_id": account_id,
            "marketplace": marketplace,
            "state": "CONNECTING" if enabled else "DISABLED",
            "state_changed_at": now,
            "enabled": enabled,
            # new: its first pushes wait for the seller's review (domain.push_guard)
            "push_hold": "review",
            "created_at": now,
            "updated_at": now,
        },
        conflict=["alias"],
    )
    row = _row(session, alias)
    row.channel, row.account_id, row.marketplace = channel, account_id, marketplace
    if row.enabled != enabled:
        row.enabled = enabled
        _change_state(row, "CONNECTING" if enabled else "DISABLED", None)
    return row.id


def retire_missing(session: Session, keep: Iterable[str]) -> list[str]:
    """Disable integrations no longer in the configuration (their rows and history stay).

    :returns: the aliases that were disabled now.
    """
    keep = set(keep)
    retired = []
    for row in session.execute(select(IntegrationRow).where(IntegrationRow.enabled)).scalars():
        if row.alias not in keep:
            row.enabled = False
            _change_state(row, "DISABLED", "removed from the configuration")
            retired.append(row.alias)
    return sorted(retired)


def integration_id(session: Session, alias: str) -> int:
    return _row(session, alias).id


def set_state(
    session: Session,
    alias: str,
    state: str | enum.Enum,
    reason: str | None = None,
    *,
    last_error: str | None = None,
) -> str:
    """Persist a lifecycle state; ``state_changed_at`` moves only when the state changes.

    ``state`` may be a name (``"LIVE"``) or any enum member whose *name* is one of
    ``INTEGRATION_STATES``. ``last_error`` is kept until another error replaces it, so the
    status page can show the last failure even after recovery.

    :returns: the previous state.
    """
    name = _state_name(state)
    row = _row(session, alias)
    previous = row.state
    _change_state(row, name, reason)
    if last_error is not None:
        row.last_error = last_error
    return previous


def get_state(session: Session, alias: str) -> IntegrationStatus:
    return _status(_row(session, alias))


def get_states(session: Session) -> list[IntegrationStatus]:
    """Every integration, by alias."""
    rows = session.execute(select(IntegrationRow).order_by(IntegrationRow.alias)).scalars()
    return [_status(row) for row in rows]


def set_seller_id(session: Session, account: str, seller_id: str | None) -> None:
    """Record the seller id ``check_credentials`` learnt for an account."""
    _account(session, account).seller_id = seller_id


def set_account_secret(session: Session, account: str, blob: bytes | None) -> None:
    """Store the account's secret (e.g. a refresh token), already encrypted by the caller."""
    _account(session, account).secret_blob = blob


def account_secret(session: Session, account: str) -> bytes | None:
    return _account(session, account).secret_blob


def _change_state(row: IntegrationRow, state: str, reason: str | None) -> None:
    if row.state != state:
        row.state = state
        row.state_changed_at = transaction_now()
    row.state_reason = reason


def _state_name(state: str | enum.Enum) -> str:
    name = state.name if isinstance(state, enum.Enum) else str(state).upper()
    if name not in INTEGRATION_STATES:
        raise ValueError(
            f"integration state {state!r} is not one of {', '.join(INTEGRATION_STATES)}"
        )
    return name


def _row(session: Session, alias: str) -> IntegrationRow:
    row = session.execute(
        select(IntegrationRow).where(IntegrationRow.alias == alias)
    ).scalar_one_or_none()
    if row is None:
        raise UnknownIntegration(f"no integration {alias!r} in the database")
    return row


def _account(session: Session, name: str) -> Account:
    account = session.execute(select(Account).where(Account.name == name)).scalar_one_or_none()
    if account is None:
        raise UnknownIntegration(f"no account {name!r} in the database")
    return account


def _status(row: IntegrationRow) -> IntegrationStatus:
    return IntegrationStatus(
        id=row.id,
        alias=row.alias,
        channel=row.channel,
        account=row.account.name,
        marketplace=row.marketplace,
        state=row.state,
        state_reason=row.state_reason,
        state_changed_at=row.state_changed_at,
        last_error=row.last_error,
        enabled=row.enabled,
    )
