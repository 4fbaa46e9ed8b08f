"""Channel notifications from an SQS queue: each one a trigger, never the truth.

A channel (Amazon SP-API today) publishes change notifications to the seller's SQS queue.
Reading one is the channel's business (the ``read_notification`` hook turns a message
body into a :class:`~marketsync.core.types.Notice` naming the job to run); this module
only consumes the queue. A notification only says *that* something changed; it can be late, repeated or out of
order, and carries no buyer data or prices. So the consumer never applies a payload: it
fetches the truth through the governor at once. A notice naming one record of an import
(an order) has that record fetched alone (``Daemon.fetch_record``: one ``getOrder``, not
an account-wide search) and stored by the integration of its marketplace; any other
asks the scheduler to run the matching job for every integration of the account
(``trigger``); a finished submission is made due first so that its poll runs now. Since
each fetch reads the current truth, notices that arrive out of order do no harm. Polling
stays as the safety net; ``notifications status`` counts the orders polling found that
no notification announced.

Per message, in this order: parse (a message that is not a notification is logged and
deleted, so it cannot poison the queue), skip it if its id is known (a duplicate), act,
remember its id in the store, and only then delete it from the queue. A failed fetch
falls back to the job (the poll runs now); a store failure leaves the message in the
queue and SQS delivers it again after the visibility timeout: acting twice is harmless,
acting never is not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import trio

from marketsync.core import clock
from marketsync.core.errors import BadNotification
from marketsync.core.runtime.sqs import Message, NotificationsUnavailable, SqsError, SqsQueue
from marketsync.core.store import notifications_seen, submissions
from marketsync.core.types import Notice

log = logging.getLogger("marketsync.notifications")

#: after a failed receive, wait this long (doubling up to the cap) before the next one
RETRY_FIRST, RETRY_CAP = 5.0, 300.0
#: a fetch of one announced record that takes longer is given up; the import runs instead
FETCH_DEADLINE = 120.0
#: an import that reads a whole snapshot (every FBA SKU), not the one record announced,
#: runs at most this often on notifications: Amazon sends one per SKU, and a burst of
#: them (an hour's stock drift, a large MCF order) must make one run, not one per SKU
SNAPSHOT_EVERY = {"import_stock": 60.0}
#: what ``counts`` holds (and /metrics shows) per account
OUTCOMES = ("received", "acted", "fetched", "fetch_failed", "unrouted", "duplicate", "bad",
            "foreign", "failed_polls")


class NotificationHost(Protocol):
    """What the consumer uses of the daemon: the store, integration ids, the scheduler's
    triggers and a fetch of one record."""

    store: Any
    integration_ids: Mapping[str, int]

    def trigger(self, alias: str, kind: str, *, delay: float | None = None) -> None: ...

    async def fetch_record(self, alias: str, kind: str, record_id: str) -> bool | None: ...


@dataclass
class Consumer:
    """One account's queue. ``aliases`` are the account's integrations to trigger."""

    host: NotificationHost
    account: str
    queue: SqsQueue
    aliases: Sequence[str]
    #: the channel's ``read_notification``: message body -> Notice, or BadNotification
    read: Callable[[str], Notice]
    wait_seconds: int = 20
    #: how long a received message stays hidden before SQS hands it out again
    visibility_timeout: int = 120
    seller_id: Callable[[], str | None] = lambda: None
    #: marketplace code → the account's integration serving it (where a record goes)
    marketplaces: Mapping[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
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
            notice = self.read(message.body)
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
        if await self.host.store.read(notifications_seen.known, notice.notification_id):
            self.counts["duplicate"] += 1  # Amazon sent it twice, or SQS delivered it again
            await self.queue.delete(message)
            return
        await self.act(notice)
        new = await self.host.store.run(
            notifications_seen.remember, notification_id=notice.notification_id,
            account=self.account, type=notice.type, subject=notice.subject,
            event_time=notice.event_time)
        self.counts["acted" if new else "duplicate"] += 1
        await self.queue.delete(message)  # only now: the store has it

    async def act(self, notice: Notice) -> None:
        """Fetch what the notice announces, now: its one record, else its job."""
        job = notice.job
        if job is None:
            return
        if notice.record_id is not None and notice.marketplace is not None:
            alias = self.marketplaces.get(notice.marketplace)
            if alias is None:
                self.counts["unrouted"] += 1
                log.warning("%s: %s %s is about marketplace %s, which no integration of "
                            "this account imports; nothing fetched", self.account,
                            notice.type, notice.notification_id, notice.marketplace)
                return
            if await self._fetch(alias, notice):
                return
        if job == "poll_submission" and notice.subject:
            await self._submission_finished(notice.subject)
            return
        for alias in self.aliases:
            self.host.trigger(alias, job, delay=SNAPSHOT_EVERY.get(job))

    async def _fetch(self, alias: str, notice: Notice) -> bool:
        """The announced record fetched and stored; False when the job must run instead."""
        assert notice.job is not None and notice.record_id is not None
        try:
            with trio.fail_after(FETCH_DEADLINE):
                found = await self.host.fetch_record(alias, notice.job, notice.record_id)
        except Exception as error:  # noqa: BLE001 - the job is the fallback, never fatal
            self.counts["fetch_failed"] += 1
            # the error's type and the record's id only: a channel's message may quote data
            log.warning("%s: fetching %s announced by %s failed (%s); the import runs now "
                        "instead", alias, notice.record_id, notice.type, type(error).__name__)
            return False
        if found is None:
            return False  # not LIVE, or the channel cannot fetch one record: the job decides
        self.counts["fetched"] += 1
        if not found:
            log.info("%s: %s announced by %s was not given back (gone or quarantined)",
                     alias, notice.record_id, notice.type)
        return True

    async def _submission_finished(self, channel_id: str) -> None:
        ids = {self.host.integration_ids[a]: a for a in self.aliases
               if a in self.host.integration_ids}
        owners = await self.host.store.run(submissions.poll_now, list(ids), channel_id)
        for integration_id in owners:  # none: not ours, or already followed to its end
            self.host.trigger(ids[integration_id], "poll_submission")


async def run_account(host: Any, name: str, settings: Any, aliases: Sequence[str],
                      seller_id: Callable[[], str | None],
                      read: Callable[[str], Notice],
                      marketplaces: Mapping[str, str] | None = None) -> None:
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
                            read=read, wait_seconds=settings.wait_seconds, seller_id=seller_id,
                            marketplaces=dict(marketplaces or {}))
        host.notification_consumers[name] = consumer
        log.info("%s: reading notifications from %s", name, settings.queue_url)
        await consumer.run()


def start_all(host: Any, config: Any, nursery: trio.Nursery) -> None:
    """A consumer per account that has a ``notifications`` section, in the daemon's nursery."""
    for name, account in config.accounts.items():
        settings = getattr(account, "notifications", None)
        if settings is None:
            continue
        members = [i for i in config.integrations if i.account == name and i.enabled]
        aliases = [i.alias for i in members]
        hooks = host.plugins.channel(members[0].channel) if members else None
        if hooks is None or not hooks.supports("read_notification"):
            log.error("%s: its channel cannot read notifications; orders still come by "
                      "polling", name)
            continue

        def read(body: str, hooks=hooks) -> Notice:
            return hooks.call_sync("read_notification", body=body)

        def seller_id(name=name) -> str | None:
            for integration in host.integrations.values():
                if integration.account == name and integration.credentials.get("seller_id"):
                    return integration.credentials["seller_id"]
            return None

        by_marketplace = {i.marketplace: i.alias for i in members}
        nursery.start_soon(run_account, host, name, settings, aliases, seller_id, read,
                           by_marketplace)
