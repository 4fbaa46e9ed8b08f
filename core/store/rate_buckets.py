"""Rate-limit buckets in the database, for a governor shared by several replicas.

GCRA (research/wave2.md §3.4): a bucket is one timestamp, ``tat``, the moment it will be
full again. Taking ``cost`` tokens at ``now`` from a bucket of ``rate``/s and ``burst`` is
allowed iff ``max(tat, now) + cost/rate - burst/rate <= now``, and moves ``tat`` to
``max(tat, now) + cost/rate``. One ``INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING``
does the check and the move under the row lock, so replicas racing for the last token
cannot both get it, and a bucket seen for the first time starts full. Times are POSIX
seconds passed in by the caller (``core.clock``), so simulated time stays simulated; the
replicas' clocks must agree to well under one emission interval, which NTP gives.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import RateBucket

#: float slack, as in the in-process buckets
EPSILON = 1e-9


def _dialect(session: Session):
    name = session.get_bind().dialect.name
    return (postgresql, func.greatest) if name == "postgresql" else (sqlite, func.max)


def take(session: Session, key: str, cost: int, rate: float, burst: int,
         now: float) -> tuple[float, float]:
    """Take ``cost`` tokens of ``key`` if they are there.

    :returns: ``(wait, tat)``: wait 0.0 when taken, else the seconds until ``cost`` tokens
        will be there (nothing taken); ``tat`` is the bucket's timestamp afterwards.
    """
    module, greatest = _dialect(session)
    interval = 1.0 / rate
    after = greatest(RateBucket.tat, now) + cost * interval
    statement = (
        module.insert(RateBucket)
        .values(key=key, tat=now + cost * interval)
        .on_conflict_do_update(index_elements=["key"], set_={"tat": after},
                               where=after - burst * interval <= now + EPSILON)
        .returning(RateBucket.tat)
    )
    tat = session.execute(statement).scalar_one_or_none()
    if tat is not None:
        return 0.0, tat
    tat = session.execute(select(RateBucket.tat).where(RateBucket.key == key)).scalar_one()
    return max(max(tat, now) + cost * interval - burst * interval - now, EPSILON), tat


def drain(session: Session, key: str, rate: float, burst: int, now: float) -> float:
    """Empty the bucket (the channel answered 429); returns its timestamp afterwards."""
    module, greatest = _dialect(session)
    empty = now + burst / rate
    statement = (
        module.insert(RateBucket)
        .values(key=key, tat=empty)
        .on_conflict_do_update(index_elements=["key"],
                               set_={"tat": greatest(RateBucket.tat, empty)})
        .returning(RateBucket.tat)
    )
    return session.execute(statement).scalar_one()
