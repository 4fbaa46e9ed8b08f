"""Channel notifications from an SQS queue: each one a trigger, never the truth.

Amazon SP-API publishes ORDER_CHANGE, FBA_INVENTORY_AVAILABILITY_CHANGES,
FULFILLMENT_ORDER_STATUS, FEED_PROCESSING_FINISHED and REPORT_PROCESSING_FINISHED to the
seller's SQS queue (envelopes per the official schemas in shared/spapi/schemas). A
notification only says *that* something changed; it can be late, repeated or out of
order, and carries no buyer data or prices. So the consumer never applies a payload: it
asks the scheduler to run the matching job for every integration of the account at once
(``trigger``), and that job fetches the truth through the governor. Polling stays as the
safety net; ``notifications status`` counts the orders polling found that no
notification announced.

Per message, in this order: parse (a message that is not a notification is logged and
deleted, so it cannot poison the queue), remember its id in the store (a duplicate
triggers nothing), trigger, and only then delete it from the queue. A store failure
leaves the message in the queue: SQS delivers it again after the visibility timeout.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx
import trio

from marketsync.core import clock
from marketsync.core.runtime.sqs import Message, NotificationsUnavailable, SqsError, SqsQueue
from marketsync.core.store import notifications_seen

log = logging.getLogger("marketsync.notifications")

#: notification type → the job that fetches what it announces
JOB_FOR = {
    "ORDER_CHANGE": "import_orders",
    "FBA_INVENTORY_AVAILABILITY_CHANGES": "import_stock",
    "FULFILLMENT_ORDER_STATUS": "fetch_tracking",
    "FEED_PROCESSING_FINISHED": "poll_submission",
    "REPORT_PROCESSING_FINISHED": "import_products",
}
#: after a failed receive, wait this long (doubling up to the cap) before the next one
RETRY_FIRST, RETRY_CAP = 5.0, 300.0


class BadNotification(ValueError):
    """The message is not an SP-API notification we can read."""


@dataclass(frozen=True, slots=True)
class Notice:
    notification_id: str
    type: str
    seller_id: str | None
    subject: str | None  #: the order, feed, report or fulfilment order it is about
    event_time: datetime | None


def _get(mapping: Any, name: str) -> Any:
    """SP-API envelopes spell keys PascalCase (orders, FBA) or camelCase (feeds, reports)."""
    if not isinstance(mapping, dict):
        return None
    if name in mapping:
        return mapping[name]
    return mapping.get(name[0].lower() + name[1:])


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse(body: str) -> Notice:
    try:
        envelope = json.loads(body)
    except ValueError:
        raise BadNotification("the message body is not JSON") from None
    kind = _get(envelope, "NotificationType")
    notification_id = _get(_get(envelope, "NotificationMetadata"), "NotificationId")
    payload = _get(envelope, "Payload")
    if not isinstance(kind, str) or not isinstance(notification_id, str) or not notification_id:
        raise BadNotification("NotificationType or NotificationMetadata.NotificationId missing")
    if not isinstance(payload, dict):
        raise BadNotification(f"{kind} {notification_id}: Payload missing")
    seller, subject = _get(payload, "SellerId"), None
    if kind == "ORDER_CHANGE":
        inner = _get(payload, "OrderChangeNotification")
        seller, subject = _get(inner, "SellerId"), _get(inner, "AmazonOrderId")
        if not isinstance(subject, str):
            raise BadNotification(f"ORDER_CHANGE {notification_id}: AmazonOrderId missing")
    elif kind == "FULFILLMENT_ORDER_STATUS":
        inner = _get(payload, "FulfillmentOrderStatusNotification")
        seller, subject = _get(inner, "SellerId"), _get(inner, "SellerFulfillmentOrderId")
    elif kind == "FEED_PROCESSING_FINISHED":
        inner = _get(payload, "FeedProcessingFinishedNotification")
        seller, subject = _get(inner, "SellerId"), _get(inner, "FeedId")
    elif kind == "REPORT_PROCESSING_FINISHED":
        inner = _get(payload, "ReportProcessingFinishedNotification")
        seller, subject = _get(inner, "SellerId"), _get(inner, "ReportId")
    elif kind == "FBA_INVENTORY_AVAILABILITY_CHANGES":
        subject = _get(payload, "SKU")
    return Notice(notification_id=notification_id, type=kind,
                  seller_id=seller if isinstance(seller, str) else None,
                  subject=str(subject)[:128] if subject is not None else None,
                  event_time=_time(_get(envelope, "EventTime")))


class NotificationHost(Protocol):
    """What the consumer uses of the daemon: the store and the scheduler's triggers."""

    store: Any

    def trigger(self, alias: str, kind: str, *, delay: float | None = None) -> None: ...


@dataclass
class Consumer:
    """One account's queue. ``aliases`` are the account's integrations to trigger."""

    host: NotificationHost
    account: str
    queue: SqsQueue
    aliases: Sequence[str]
    wait_seconds: int = 20
    #: how long a received message stays hidden before SQS hands it out again
    visibility_timeout: int = 120
    seller_id: Callable[[], str | None] = lambda: None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("received", "acted", "duplicate", "bad", "foreign", "failed_polls"), 0))
    last_poll: float | None = None  #: trio time of the last successful receive
    #: orders polling stored that no notification named (``notifications_seen.summary``),
    #: refreshed every minute for ``/metrics``
    missed: int = 0
    _cleaned: float = float("-inf")
    _counted: float = float("-inf")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        retry = RETRY_FIRST
        failing = False
        while True:
            try:
                messages = await self.queue.receive(wait_seconds=self.wait_seconds,
                                                    visibility_timeout=self.visibility_timeout)
            except (httpx.HTTPError, SqsError) as error:
                self.counts["failed_polls"] += 1
                if not failing:  # log when it starts failing, not on every retry
                    log.warning("%s: cannot read the notifications queue (%s); polling "
                                "carries on, retrying in %.0f s", self.account, error, retry)
                failing = True
                await trio.sleep(retry)
                retry = min(retry * 2, RETRY_CAP)
                continue
            if failing:
                log.info("%s: notifications queue readable again", self.account)
            failing, retry = False, RETRY_FIRST
            self.last_poll = trio.current_time()
            if self.last_poll - self._cleaned > 3600:  # hourly; a failure waits an hour
                self._cleaned = self.last_poll
                try:
                    await self.host.store.run(notifications_seen.forget_old, clock.now())
                except Exception:  # noqa: BLE001 - housekeeping, never fatal
                    log.exception("%s: forgetting old notification ids failed", self.account)
            if self.last_poll - self._counted >= 60:
                self._counted = self.last_poll
                try:
                    summary = await self.host.store.run(notifications_seen.summary,
                                                        self.account)
                    self.missed = int(summary["missed"])
                except Exception:  # noqa: BLE001 - a metric, never fatal
                    log.exception("%s: counting missed notifications failed", self.account)
            for message in messages:
                try:
                    await self.handle(message)
                except Exception:  # noqa: BLE001 - the store is down, say: SQS redelivers
                    log.exception("%s: notification message %s not handled; it stays in the "
                                  "queue and comes back", self.account, message.message_id)

    async def handle(self, message: Message) -> None:
        self.counts["received"] += 1
        try:
            notice = parse(message.body)
        except BadNotification as error:
            self.counts["bad"] += 1
            log.warning("%s: dropped queue message %s: %s", self.account, message.message_id,
                        error)
            await self.queue.delete(message)
            return
        ours = self.seller_id()
        if ours and notice.seller_id and notice.seller_id != ours:
            self.counts["foreign"] += 1  # another seller's on a shared queue: not ours
            log.warning("%s: notification %s is for seller %s, not this account's; deleted",
                        self.account, notice.notification_id, notice.seller_id)
            await self.queue.delete(message)
            return
        new = await self.host.store.run(
            notifications_seen.remember, notification_id=notice.notification_id,
            account=self.account, type=notice.type, subject=notice.subject,
            event_time=notice.event_time)
        job = JOB_FOR.get(notice.type)
        if new and job is not None:
            self.counts["acted"] += 1
            for alias in self.aliases:
                self.host.trigger(alias, job)
        elif not new:
            self.counts["duplicate"] += 1
        await self.queue.delete(message)  # only now: the store has it


async def run_account(host: Any, name: str, settings: Any, aliases: Sequence[str],
                      seller_id: Callable[[], str | None]) -> None:
    """One account's consumer for the daemon's life. Without the optional extra it logs
    one line and returns: polling alone keeps the orders coming, only slower."""
    async with httpx.AsyncClient() as http:
        try:
            queue = SqsQueue(http, settings.queue_url,
                             access_key_id=settings.access_key_id.value,
                             secret_access_key=settings.secret_access_key.value,
                             region=settings.region)
        except NotificationsUnavailable as error:
            log.error("%s: %s; orders still come by polling", name, error)
            return
        consumer = Consumer(host=host, account=name, queue=queue, aliases=tuple(aliases),
                            wait_seconds=settings.wait_seconds, seller_id=seller_id)
        host.notification_consumers[name] = consumer
        log.info("%s: reading notifications from %s", name, settings.queue_url)
        await consumer.run()


def start_all(host: Any, config: Any, nursery: trio.Nursery) -> None:
    """A consumer per account that has a ``notifications`` section, in the daemon's nursery."""
    for name, account in config.accounts.items():
        settings = getattr(account, "notifications", None)
        if settings is None:
            continue
        aliases = [i.alias for i in config.integrations if i.account == name and i.enabled]

        def seller_id(name=name) -> str | None:
            for integration in host.integrations.values():
                if integration.account == name and integration.credentials.get("seller_id"):
                    return integration.credentials["seller_id"]
            return None

        nursery.start_soon(run_account, host, name, settings, aliases, seller_id)
