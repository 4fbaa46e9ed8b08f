"""Rate-limit buckets in the database, for a governor shared by several replicas.

GCRA (research/wave2.md §3.4): a bucket is one timestamp, ``tat``, the moment it will be
full again, and the emission interval (1/rate) it was booked at. Taking ``cost`` tokens at ``now`` from a bucket of ``rate``/s and ``burst`` is
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


def _scaled(greatest, now: float, interval: float):
    """SQL: the bucket's timestamp measured in this caller's emission interval.

    Replicas may apply different rates to one bucket for a while (one has adopted the rate
    a response header reported, another slowed down after a 429), and a rate learnt from a
    header can be a hundred times the published one. The debt ``tat - now`` is a number
    of tokens times the interval it was booked at; rebooking it at the caller's interval
    keeps the number of tokens, as the in-process buckets do when limits change.
    """
    return now + greatest(RateBucket.tat - now, 0.0) * (interval / RateBucket.interval)


def take(session: Session, key: str, cost: int, rate: float, burst: int,
         now: float) -> tuple[float, float]:
    """Take ``cost`` tokens of ``key`` if they are there.

    :returns: ``(wait, tat)``: wait 0.0 when taken, else the seconds until ``cost`` tokens
        will be there (nothing taken); ``tat`` is the bucket's timestamp afterwards, in
        this caller's interval.
    """
    module, greatest = _dialect(session)
    interval = 1.0 / rate
    after = _scaled(greatest, now, interval) + cost * interval
    statement = (
        module.insert(RateBucket)
        .values(key=key, tat=now + cost * interval, interval=interval)
        .on_conflict_do_update(index_elements=["key"], set_={"tat": after, "interval": interval},
                               where=after - burst * interval <= now + EPSILON)
        .returning(RateBucket.tat)
    )
    tat = session.execute(statement).scalar_one_or_none()
    if tat is not None:
        return 0.0, tat
    stored, booked = session.execute(
        select(RateBucket.tat, RateBucket.interval).where(RateBucket.key == key)).one()
    tat = now + max(stored - now, 0.0) * (interval / booked)
    return max(tat + cost * interval - burst * interval - now, EPSILON), tat


def drain(session: Session, key: str, rate: float, burst: int, now: float) -> float:
    """Empty the bucket (the channel answered 429); returns its timestamp afterwards."""
    module, greatest = _dialect(session)
    interval = 1.0 / rate
    empty = now + burst * interval
    statement = (
        module.insert(RateBucket)
        .values(key=key, tat=empty, interval=interval)
        .on_conflict_do_update(index_elements=["key"],
                               set_={"tat": greatest(_scaled(greatest, now, interval), empty),
                                     "interval": interval})
        .returning(RateBucket.tat)
    )
    return session.execute(statement).scalar_one()
