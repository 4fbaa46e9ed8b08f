"""Daemon heartbeats in the database: the only way another process knows one is alive.

The daemon writes its row every ``HEARTBEAT_EVERY`` seconds and marks it stopped on a
clean exit; a row whose beat is older than ``STALE_AFTER`` belongs to a daemon that was
killed or hangs. ``status`` and the page read the newest row, so after the daemon stops
they say so instead of showing LIVE with "next 48s ago".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import DaemonHeartbeat
from .timing import transaction_now
from .upsert import insert_or_update

HEARTBEAT_EVERY = 30.0
#: three missed beats: a busy event loop may be late once, not three times
STALE_AFTER = 3 * HEARTBEAT_EVERY


def beat(session: Session, owner: str, started_at: datetime) -> None:
    now = transaction_now()
    insert_or_update(session, DaemonHeartbeat,
                     {"owner": owner, "started_at": started_at, "beat_at": now,
                      "stopped_at": None},
                     conflict=["owner"],
                     update={"started_at": started_at, "beat_at": now, "stopped_at": None})


def stopped(session: Session, owner: str) -> None:
    session.execute(update(DaemonHeartbeat).where(DaemonHeartbeat.owner == owner)
                    .values(stopped_at=transaction_now()))


def latest(session: Session) -> dict | None:
    """The most recently beating daemon, as plain values (None: never ran here)."""
    row = session.execute(select(DaemonHeartbeat)
                          .order_by(DaemonHeartbeat.beat_at.desc()).limit(1)).scalar_one_or_none()
    if row is None:
        return None
    return {"owner": row.owner, "started_at": row.started_at, "beat_at": row.beat_at,
            "stopped_at": row.stopped_at}


def liveness(heartbeat: dict | None, now: datetime) -> tuple[bool, str]:
    """(running, one line saying so) for ``status`` and the page's banner."""
    if heartbeat is None:
        return False, "daemon not running: it has never run on this database"
    if heartbeat["stopped_at"] is not None:
        return False, (f"daemon not running: stopped at "
                       f"{heartbeat['stopped_at']:%Y-%m-%d %H:%M:%S} UTC; states and next "
                       "runs below are as it left them")
    silent = (now - heartbeat["beat_at"]).total_seconds()
    if silent > STALE_AFTER:
        return False, (f"daemon not running or hung: stale since "
                       f"{heartbeat['beat_at']:%Y-%m-%d %H:%M:%S} UTC (no heartbeat for "
                       f"{int(silent // 60)}m{int(silent % 60):02d}s); states and next runs "
                       "below are as it left them")
    return True, f"daemon running ({heartbeat['owner']}, since " \
                 f"{heartbeat['started_at']:%Y-%m-%d %H:%M:%S} UTC)"
