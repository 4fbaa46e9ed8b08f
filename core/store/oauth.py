"""One-time ``state`` values of pending consent (connect) flows.

A state is random, bound to one integration, valid for ``ttl`` and used at most once, so a
forged or replayed redirect cannot attach someone else's account to an integration.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import OAuthState
from .timing import transaction_now

DEFAULT_TTL = timedelta(minutes=10)


class StateRejected(LookupError):
    """The redirect's state is unknown, used already or expired; the message says which."""


def create(session: Session, alias: str) -> str:
    state = secrets.token_urlsafe(32)
    session.add(OAuthState(state=state, integration_alias=alias, created_at=transaction_now()))
    session.flush()
    return state


def consume(session: Session, state: str, *, ttl: timedelta = DEFAULT_TTL) -> str:
    """Mark ``state`` used and return its integration alias, or raise :class:`StateRejected`."""
    if not state:
        raise StateRejected("the answer carries no state; start the connect again")
    row = session.execute(
        select(OAuthState).where(OAuthState.state == state).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise StateRejected("unknown state: this answer does not belong to a connect started "
                            "here; start the connect again")
    if row.used_at is not None:
        raise StateRejected("this connect was completed already; start a new one")
    now = transaction_now()
    if now - row.created_at > ttl:
        raise StateRejected(f"the connect expired (older than {int(ttl.total_seconds() // 60)} "
                            "minutes); start it again")
    row.used_at = now
    return row.integration_alias
