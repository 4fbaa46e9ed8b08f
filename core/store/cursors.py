"""Import cursors: where each (integration, kind) import stands, or each (account, kind)
import when the job serves a whole account.

Meltano's rule: the bookmark is committed with the data it covers. Call ``save`` inside
the same ``store.run`` unit of work that writes the page, so a crash either keeps both
the page and the new cursor or neither.
"""

from __future__ import annotations

import json

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from marketsync.core.types import Cursor

from .models import Account, AccountCursor, IntegrationRow, JobCursor
from .timing import transaction_now
from .upsert import excluded, insert_or_update


def load(session: Session, integration_id: int, kind: str) -> Cursor:
    """The stored cursor, or an empty ``Cursor()`` (start from the beginning)."""
    data = session.execute(
        select(JobCursor.cursor).where(
            JobCursor.integration_id == integration_id, JobCursor.kind == kind
        )
    ).scalar_one_or_none()
    return Cursor.from_json(data)


def save(session: Session, integration_id: int, kind: str, cursor: Cursor) -> None:
    """Store ``cursor`` verbatim, replacing the previous one."""
    data = cursor.to_json()
    try:
        json.dumps(data)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"cursor for integration {integration_id} kind {kind!r} cannot be stored: "
            f"its state is not JSON ({error})"
        ) from None
    now = transaction_now()
    new = excluded(session, JobCursor)
    insert_or_update(
        session,
        JobCursor,
        {"integration_id": integration_id, "kind": kind, "cursor": data, "updated_at": now},
        conflict=["integration_id", "kind"],
        update={"cursor": new.cursor, "updated_at": new.updated_at},
    )


def reset(session: Session, integration_id: int, kind: str) -> bool:
    """Forget the cursor so the next import starts over; True when there was one."""
    result = session.execute(
        delete(JobCursor).where(JobCursor.integration_id == integration_id, JobCursor.kind == kind)
    )
    return bool(result.rowcount)


# --- account-scoped imports ----------------------------------------------------------------

#: the key of ``Cursor.state`` holding per-marketplace watermarks (``core/hookspecs.py``)
WATERMARKS = "watermarks"


def _account_id(session: Session, account: str) -> int:
    account_id = session.execute(select(Account.id).where(Account.name == account)).scalar()
    if account_id is None:
        raise KeyError(f"no account {account!r} in the database")
    return account_id


def load_account(session: Session, account: str, kind: str) -> Cursor:
    """The account's stored cursor; the first time, one made from its integrations' own.

    A seller upgrading from per-integration order imports must neither re-import nor skip
    a window: each integration's committed watermark becomes its marketplace's entry in
    ``state["watermarks"]`` and the lowest becomes ``since``. A page token in flight is
    not carried over (its window starts after ``since``, so nothing is lost; the overlap
    re-reads a few minutes). An integration that never finished a window gets no entry:
    its history is read as for a new one.
    """
    account_id = _account_id(session, account)
    data = session.execute(
        select(AccountCursor.cursor).where(AccountCursor.account_id == account_id,
                                           AccountCursor.kind == kind)
    ).scalar_one_or_none()
    if data is not None:
        return Cursor.from_json(data)
    rows = session.execute(
        select(IntegrationRow.marketplace, JobCursor.cursor)
        .join(JobCursor, JobCursor.integration_id == IntegrationRow.id)
        .where(IntegrationRow.account_id == account_id, JobCursor.kind == kind)
    ).all()
    marks = {}
    for marketplace, stored in rows:
        since = Cursor.from_json(stored).since
        if since is not None:
            marks[marketplace] = min(since, marks.get(marketplace, since))
    if not marks:
        return Cursor()
    return Cursor(since=min(marks.values()),
                  state={WATERMARKS: {m: t.isoformat() for m, t in sorted(marks.items())}})


def save_account(session: Session, account: str, kind: str, cursor: Cursor) -> None:
    """Store the account's cursor verbatim, in the caller's unit of work."""
    data = cursor.to_json()
    try:
        json.dumps(data)
    except (TypeError, ValueError) as error:
        raise ValueError(f"cursor for account {account!r} kind {kind!r} cannot be stored: "
                         f"its state is not JSON ({error})") from None
    new = excluded(session, AccountCursor)
    insert_or_update(
        session,
        AccountCursor,
        {"account_id": _account_id(session, account), "kind": kind, "cursor": data,
         "updated_at": transaction_now()},
        conflict=["account_id", "kind"],
        update={"cursor": new.cursor, "updated_at": new.updated_at},
    )
