"""The ids of channel notifications already acted on: what makes a redelivery harmless."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from marketsync.core.store.models import Account, IntegrationRow, NotificationSeen, Order
from marketsync.core.store.timing import transaction_now

#: SQS keeps a message at most 14 days; an id older than that cannot come back
KEEP = timedelta(days=15)


def known(session: Session, notification_id: str) -> bool:
    """Whether this notification was acted on already."""
    return session.execute(select(NotificationSeen.id).where(
        NotificationSeen.notification_id == notification_id)).scalar() is not None


def remember(session: Session, *, notification_id: str, account: str, type: str,
             subject: str | None, event_time: datetime | None) -> bool:
    """Record a notification; False when it was seen before (a duplicate: act on nothing)."""
    found = session.execute(select(NotificationSeen.id).where(
        NotificationSeen.notification_id == notification_id)).scalar()
    if found is not None:
        return False
    session.add(NotificationSeen(notification_id=notification_id, account=account, type=type,
                                 subject=subject, event_time=event_time,
                                 received_at=transaction_now()))
    session.flush()
    return True


def forget_old(session: Session, now: datetime) -> int:
    return session.execute(delete(NotificationSeen).where(
        NotificationSeen.received_at < now - KEEP)).rowcount or 0


def summary(session: Session, account: str) -> dict[str, object]:
    """For ``notifications status``: how many, the last one, and orders the poll found
    that no notification announced since notifications first arrived (missed)."""
    count, first, last = session.execute(
        select(func.count(NotificationSeen.id), func.min(NotificationSeen.received_at),
               func.max(NotificationSeen.received_at))
        .where(NotificationSeen.account == account)).one()
    missed = 0
    if first is not None:
        announced = select(NotificationSeen.subject).where(
            NotificationSeen.account == account, NotificationSeen.subject.is_not(None))
        integrations = select(IntegrationRow.id).join(
            Account, Account.id == IntegrationRow.account_id).where(Account.name == account)
        missed = session.execute(select(func.count(Order.id)).where(
            Order.integration_id.in_(integrations), Order.created_at >= first,
            Order.channel_order_id.not_in(announced))).scalar()
    return {"received": count, "first": first, "last": last, "missed": missed}
