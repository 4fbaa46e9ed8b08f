"""Leases with fencing tokens: one owner at a time for a named piece of work.

For several replicas on one PostgreSQL (research/wave2.md §3.3): a replica owns e.g.
``"amazon-de/import_orders"`` while its lease is unexpired; every acquisition bumps the
token, and writes made on behalf of the lease call ``check`` first in the same
transaction, so an ex-owner that was paused past its expiry is refused once another
replica took over. Ownership is an expiry in a row rather than a lock held by a
connection, so a hung process loses it too.

Times come from ``transaction_now()`` (trio's clock, mockable in tests) instead of the
database clock the research sketch uses: replicas' clocks must agree to well within the
TTL, which NTP gives. Each statement is a single conditional UPDATE, so two replicas
racing for one lease cannot both win on either database.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from .models import Lease
from .timing import transaction_now
from .upsert import insert_or_update


class LeaseLost(RuntimeError):
    """The lease is no longer ours (expired, or taken over with a newer token)."""


def acquire(session: Session, name: str, owner: str, ttl: float) -> int | None:
    """Take the lease if it is free or expired.

    :returns: the new fencing token, or None when someone else holds it.
    """
    insert_or_update(session, Lease, {"name": name, "token": 0}, conflict=["name"])
    now = transaction_now()
    return session.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.expires_at.is_(None), Lease.expires_at <= now))
        .values(owner=owner, token=Lease.token + 1, expires_at=now + timedelta(seconds=ttl))
        .returning(Lease.token)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()


def renew(session: Session, name: str, owner: str, token: int, ttl: float) -> bool:
    """Extend our unexpired lease; False when it was lost (stop the work at once)."""
    now = transaction_now()
    renewed = session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.owner == owner, Lease.token == token, Lease.expires_at > now)
        .values(expires_at=now + timedelta(seconds=ttl))
        .returning(Lease.token)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    return renewed is not None


def release(session: Session, name: str, token: int) -> None:
    """Give the lease up (graceful shutdown) so a peer can take it without waiting."""
    session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.token == token)
        .values(expires_at=None)
        .execution_options(synchronize_session=False)
    )


def check(session: Session, name: str, owner: str, token: int) -> None:
    """The fence: raise LeaseLost unless we still hold the lease with this token.

    Call it first in every transaction that writes on the lease's behalf; on PostgreSQL
    the row stays share-locked until commit, so a takeover waits for our write to finish.
    """
    now = transaction_now()
    query = select(Lease.id).where(
        Lease.name == name, Lease.owner == owner, Lease.token == token, Lease.expires_at > now
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    if session.execute(query).scalar_one_or_none() is None:
        raise LeaseLost(f"lease {name!r} with token {token} is no longer held by {owner!r}")
