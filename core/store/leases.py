"""Leases with fencing tokens: one owner at a time for a named piece of work.

For several replicas on one PostgreSQL (research/wave2.md §3.3): a replica owns e.g.
``"amazon-de/import_orders"`` while its lease is unexpired; every acquisition bumps the
token, and writes made on behalf of the lease call ``check`` first in the same
transaction, so an ex-owner that was paused past its expiry is refused once another
replica took over. Ownership is an expiry in a row rather than a lock held by a
connection, so a hung process loses it too.

A replica's many job leases (``take_free`` … ``check_member``, below) hang on one
presence lease per replica instead of an expiry each: see the section comment there.

Times come from ``transaction_now()`` (trio's clock, mockable in tests) instead of the
database clock the research sketch uses: replicas' clocks must agree to well within the
TTL, which NTP gives. Each statement is a single conditional UPDATE, so two replicas
racing for one lease cannot both win on either database.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, exists, func, literal, or_, select, text, update
from sqlalchemy.orm import Session, aliased

from .models import Lease
from .timing import transaction_now
from .upsert import insert_or_update


#: names of replica presence leases start with this; the rest of the name is the owner
REPLICA_PREFIX = "replica:"
#: a fenced transaction left idle this long (its process paused) is ended by PostgreSQL,
#: so the share lock of its fence check cannot keep a new owner out for ever
FENCED_IDLE_LIMIT_MS = 15_000
#: presence rows of replicas gone this long are deleted (they are only history)
FORGET_REPLICAS_AFTER = timedelta(hours=1)


class LeaseLost(RuntimeError):
    """The lease is no longer ours (expired, or taken over with a newer token)."""


@dataclass(frozen=True, slots=True)
class Fence:
    """What a fenced write checks: this lease, still ours, with this token."""

    name: str
    owner: str
    token: int
    #: a fenced transaction left idle this long is ended by PostgreSQL (its process was
    #: paused while the job row was share-locked, which holds up a takeover); the keeper
    #: sets its lease TTL, so the takeover after a pause is not delayed beyond that
    idle_limit_ms: int = FENCED_IDLE_LIMIT_MS


#: The fence of the job running in this task. ``Store.run`` reads it and calls ``check``
#: first in the transaction, so every write a leased job makes carries its token without
#: the job code passing it around (trio copies the context into child tasks).
current_fence: contextvars.ContextVar[Fence | None] = contextvars.ContextVar(
    "marketsync_lease_fence", default=None)


@dataclass(frozen=True, slots=True)
class Holding:
    """One job lease as ``status`` shows it: ``owner`` is None when nobody alive holds it."""

    name: str
    owner: str | None
    token: int


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
        session.execute(text(
            f"SET LOCAL idle_in_transaction_session_timeout = {FENCED_IDLE_LIMIT_MS}"))
    if session.execute(query).scalar_one_or_none() is None:
        raise LeaseLost(f"lease {name!r} with token {token} is no longer held by {owner!r}")


# --- a replica's leases: alive as long as the replica is -----------------------------------
#
# A replica holds hundreds of job leases; renewing each row would cost a statement per
# lease per look, and on PostgreSQL an UPDATE of a row waits for every transaction that
# share-locked it — the fence of a long import page would hold up its own renewal. So a
# job lease taken by a replica (``take_free``) has no expiry of its own: it is held while
# its owner's *presence* lease (``replica:<owner>``, an ordinary expiring lease) is alive.
# The heartbeat renews that one row; a takeover (``take_free``) changes the job row's owner
# and token, and so still waits for a fenced write of the old owner to commit.


def _alive(owner_column, now):
    """SQL: the replica named in ``owner_column`` has an unexpired presence lease."""
    presence = aliased(Lease)
    return exists().where(presence.name == literal(REPLICA_PREFIX) + owner_column,
                          presence.expires_at > now)


def ensure(session: Session, names: Iterable[str]) -> None:
    """Create the rows of leases nobody has taken yet (free, token 0)."""
    names = list(names)
    existing = set(session.execute(select(Lease.name).where(Lease.name.in_(names))).scalars())
    for name in names:
        if name not in existing:
            insert_or_update(session, Lease, {"name": name, "token": 0}, conflict=["name"])


def join(session: Session, owner: str, ttl: float) -> int:
    """Announce a replica: take its presence lease; returns the presence token."""
    name = REPLICA_PREFIX + owner
    token = acquire(session, name, owner, ttl)
    if token is None:
        raise LeaseLost(f"replica name {owner!r} is in use by a live replica")
    return token


def heartbeat(session: Session, owner: str, token: int, ttl: float) -> bool:
    """Keep the replica, and with it every job lease it holds, alive; False when its
    presence had already expired (its job leases may have been taken meanwhile)."""
    return renew(session, REPLICA_PREFIX + owner, owner, token, ttl)


def leave(session: Session, owner: str, token: int) -> None:
    """Graceful stop: every job lease free at once, the presence gone."""
    give_back(session, owner, None)
    release(session, REPLICA_PREFIX + owner, token)


def owned(session: Session, owner: str) -> dict[str, int]:
    """The job leases whose row names ``owner``, with their tokens."""
    return dict(session.execute(
        select(Lease.name, Lease.token)
        .where(Lease.owner == owner, ~Lease.name.like(REPLICA_PREFIX + "%"))).all())


def free(session: Session, names: Iterable[str]) -> set[str]:
    """Which of ``names`` nobody holds now (no owner, or an owner no longer alive)."""
    now = transaction_now()
    return set(session.execute(
        select(Lease.name).where(Lease.name.in_(list(names)),
                                 or_(Lease.owner.is_(None), ~_alive(Lease.owner, now)))
    ).scalars())


def take_free(session: Session, names: Iterable[str], owner: str) -> dict[str, int]:
    """Take every lease of ``names`` that is free or whose owner is dead, in one statement.

    Rows another transaction has locked (a fenced write in progress, possibly of a
    paused ex-owner) are skipped, not waited for; they are tried again at the next look.

    :returns: the leases won, with their new tokens.
    """
    now = transaction_now()
    takeable = (select(Lease.id)
                .where(Lease.name.in_(list(names)),
                       or_(Lease.owner.is_(None), ~_alive(Lease.owner, now)))
                .with_for_update(skip_locked=True))
    rows = session.execute(
        update(Lease)
        .where(Lease.id.in_(takeable.scalar_subquery()))
        .values(owner=owner, token=Lease.token + 1, expires_at=None)
        .returning(Lease.name, Lease.token)
        .execution_options(synchronize_session=False)
    ).all()
    return dict(rows)


def give_back(session: Session, owner: str, names: Iterable[str] | None) -> None:
    """Free these job leases of ``owner`` (all of them when ``names`` is None)."""
    query = update(Lease).where(Lease.owner == owner, ~Lease.name.like(REPLICA_PREFIX + "%"))
    if names is not None:
        query = query.where(Lease.name.in_(list(names)))
    session.execute(query.values(owner=None).execution_options(synchronize_session=False))


def check_member(session: Session, fence: Fence) -> None:
    """The fence of a replica's job lease: raise LeaseLost unless the row still names us
    with this token and we are alive. The job row stays share-locked until commit, so a
    takeover waits for this transaction to finish (PostgreSQL); a transaction left idle
    by a paused process is ended by the server after ``fence.idle_limit_ms``."""
    now = transaction_now()
    query = select(Lease.id).where(Lease.name == fence.name, Lease.owner == fence.owner,
                                   Lease.token == fence.token)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(
            f"SET LOCAL idle_in_transaction_session_timeout = {int(fence.idle_limit_ms)}"))
        query = query.with_for_update(read=True, of=Lease)
    if session.execute(query).scalar_one_or_none() is None or not session.execute(
            select(_alive(literal(fence.owner), now))).scalar():
        raise LeaseLost(f"lease {fence.name!r} with token {fence.token} is no longer held by "
                        f"{fence.owner!r}")


@dataclass(frozen=True, slots=True)
class Look:
    """What one look of a replica's keeper learns, in one transaction."""

    alive: bool  #: the heartbeat renewed the presence (False: it had lapsed; nothing else read)
    owned: dict[str, int]
    live: int
    extra: Any = None


def look(session: Session, owner: str, token: int, ttl: float,
         extra: Callable[[Session], Any] | None = None) -> Look:
    """Heartbeat, the job leases still ours, the live replicas and ``extra(session)``, in
    one unit of work: a keeper looks every couple of seconds for as long as the daemon
    runs, so when nothing changes this is most of what the daemon does (one round of
    transaction and thread overhead instead of four)."""
    if not heartbeat(session, owner, token, ttl):
        return Look(False, {}, 0)
    return Look(True, owned(session, owner), live_replicas(session),
                extra(session) if extra is not None else None)


def live_replicas(session: Session) -> int:
    """Replicas whose presence lease is unexpired; forgets presence rows long gone."""
    now = transaction_now()
    session.execute(
        delete(Lease)
        .where(Lease.name.like(REPLICA_PREFIX + "%"),
               or_(Lease.expires_at.is_(None), Lease.expires_at < now - FORGET_REPLICAS_AFTER))
        .execution_options(synchronize_session=False))
    return session.execute(
        select(func.count()).select_from(Lease)
        .where(Lease.name.like(REPLICA_PREFIX + "%"), Lease.expires_at > now)).scalar_one()


def holdings(session: Session) -> list[Holding]:
    """Every job lease that has ever been taken, by name, with its owner while that owner
    is alive (presence rows left out)."""
    now = transaction_now()
    alive = _alive(Lease.owner, now)
    rows = session.execute(
        select(Lease.name, Lease.owner, Lease.token, alive)
        .where(~Lease.name.like(REPLICA_PREFIX + "%"), Lease.token > 0)
        .order_by(Lease.name)).all()
    return [Holding(name, owner if live else None, token) for name, owner, token, live in rows]


def replicas(session: Session) -> list[str]:
    """The replicas alive now (their presence lease is unexpired), by name."""
    now = transaction_now()
    names = session.execute(
        select(Lease.name).where(Lease.name.like(REPLICA_PREFIX + "%"), Lease.expires_at > now)
        .order_by(Lease.name)).scalars()
    return [name.removeprefix(REPLICA_PREFIX) for name in names]
