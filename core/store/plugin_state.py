"""Rows of ``plugin_state``: what a plugin keeps across restarts (``core.types.PluginState``).

Counts are raised with ``INSERT … ON CONFLICT DO UPDATE SET count = count + n`` so two
processes adding to the same key at once both count; an expired row restarts from the
amount added. Expired rows of a scope are deleted by that scope's next write, so the
table holds about one day of eBay listings' revision counts, not their history.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, or_, select
from sqlalchemy.orm import Session

from .models import PluginState
from .timing import transaction_now
from .upsert import excluded, insert_or_update

#: longest key a plugin may use (the column's width)
KEY_LIMIT = 200


def _check_keys(keys: Sequence[str]) -> None:
    for key in keys:
        if not isinstance(key, str) or not key or len(key) > KEY_LIMIT:
            raise ValueError(f"plugin state key {key!r} must be a string of 1 to "
                             f"{KEY_LIMIT} characters")


def _live(now: datetime):
    return or_(PluginState.expires_at.is_(None), PluginState.expires_at > now)


#: keys per ``IN (…)``: far inside SQLite's and PostgreSQL's limits on bound parameters
LOOKUP_CHUNK = 500


def _rows(session: Session, plugin: str, scope: str, keys: Sequence[str]) -> list:
    _check_keys(keys)
    keys, found = sorted(set(keys)), []
    for start in range(0, len(keys), LOOKUP_CHUNK):
        found += session.execute(
            select(PluginState.key, PluginState.value, PluginState.count)
            .where(PluginState.plugin == plugin, PluginState.scope == scope,
                   PluginState.key.in_(keys[start:start + LOOKUP_CHUNK]),
                   _live(transaction_now()))).all()
    return found


def get(session: Session, plugin: str, scope: str, keys: Sequence[str]) -> dict[str, Any]:
    return {key: value for key, value, _ in _rows(session, plugin, scope, keys)
            if value is not None}


def counts(session: Session, plugin: str, scope: str, keys: Sequence[str]) -> dict[str, int]:
    found = {key: count for key, _, count in _rows(session, plugin, scope, keys)}
    return {key: int(found.get(key) or 0) for key in keys}


def _purge(session: Session, plugin: str, scope: str, now: datetime) -> None:
    session.execute(delete(PluginState).where(
        PluginState.plugin == plugin, PluginState.scope == scope,
        PluginState.expires_at.is_not(None), PluginState.expires_at <= now))


def put(session: Session, plugin: str, scope: str, values: Mapping[str, Any],
        expires_at: datetime | None = None) -> None:
    _check_keys(list(values))
    now = transaction_now()
    _purge(session, plugin, scope, now)
    for key, value in values.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"plugin {plugin!r} state {key!r} cannot be stored: it is not "
                             f"JSON ({error})") from None
        if value is None:
            session.execute(delete(PluginState).where(
                PluginState.plugin == plugin, PluginState.scope == scope,
                PluginState.key == key))
            continue
        new = excluded(session, PluginState)
        insert_or_update(
            session, PluginState,
            {"plugin": plugin, "scope": scope, "key": key, "value": value, "count": 0,
             "expires_at": expires_at, "updated_at": now},
            conflict=["plugin", "scope", "key"],
            update={"value": new.value, "expires_at": new.expires_at,
                    "updated_at": new.updated_at})


def add(session: Session, plugin: str, scope: str, amounts: Mapping[str, int],
        expires_at: datetime | None = None) -> dict[str, int]:
    _check_keys(list(amounts))
    now = transaction_now()
    _purge(session, plugin, scope, now)
    for key, amount in amounts.items():
        new = excluded(session, PluginState)
        expired = and_(PluginState.expires_at.is_not(None), PluginState.expires_at <= now)
        insert_or_update(
            session, PluginState,
            {"plugin": plugin, "scope": scope, "key": key, "value": None,
             "count": int(amount), "expires_at": expires_at, "updated_at": now},
            conflict=["plugin", "scope", "key"],
            update={"count": case((expired, new.count), else_=PluginState.count + new.count),
                    "expires_at": new.expires_at, "updated_at": new.updated_at})
    return counts(session, plugin, scope, list(amounts))
