"""One function per job kind: call the channel hook, hand the answer to the store.

The scheduler decides *when*; these functions decide *what* to ask and commit each page
or result in one transaction with the cursor it belongs to (Meltano's "furthest
confirmed progress"), so a crash between two pages loses nothing and repeats nothing
that matters. Stock arithmetic stays in ``core.domain``; this module
only moves values between the plugin and those functions.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session

from marketsync.core import clock

from marketsync.core.domain import fulfillment, inventory, orders, products, push_guard
from marketsync.core.errors import CursorExpired, RecordRejected
from marketsync.core.runtime.scheduler import JobOutcome
from marketsync.core.store import cursors, job_runs, quarantine
from marketsync.core.store import submissions as store_submissions
from marketsync.core.store.timing import transaction_now
from marketsync.core.types import (
    Cursor,
    Integration,
    Page,
    REREAD_FROM,
    Priority,
    RejectedRecord,
    SubmissionReport,
)

if TYPE_CHECKING:  # pragma: no cover
    from marketsync.core.config.schema import IntegrationConfig
    from marketsync.core.domain.pii import PiiCipher
    from marketsync.core.runtime.plugins import ChannelHooks
    from marketsync.core.runtime.stats import Stats
    from marketsync.core.store import Store

log = logging.getLogger(__name__)


class JobContext(Protocol):
    """What a job may use of the running daemon, and nothing more: the store, the PII key,
    integration ids, counters and a way to ask for another run. ``Daemon`` provides it;
    a test or a one-off command can provide it without building a whole daemon."""

    store: "Store"
    cipher: "PiiCipher | None"
    integration_ids: dict[str, int]
    stats: "Stats"

    def integration_config(self, alias: str) -> "IntegrationConfig": ...

    def trigger(self, alias: str, kind: str, *, delay: float | None = None) -> None: ...

    def stock_changed(self) -> None: ...

KINDS = (
    "import_orders",
    "import_products",
    "import_stock",
    "push_stock",
    "push_prices",
    "poll_submission",
    "confirm_shipment",
    "fetch_tracking",
)

#: Priority of jobs a channel runs without listing them in channel_info.
PRIORITIES = {
    "import_orders": Priority.ORDERS,
    "import_products": Priority.PRODUCTS,
    "import_stock": Priority.PRODUCTS,
    "push_stock": Priority.URGENT,
    "push_prices": Priority.URGENT,
    "poll_submission": Priority.URGENT,
    "confirm_shipment": Priority.URGENT,
    "fetch_tracking": Priority.PRODUCTS,
}

#: Pages one import run commits before yielding to other jobs; the next run goes on.
MAX_PAGES_PER_RUN = 200
#: Seconds an import run pages for before it hands over to a follow-up run: a backfill at
#: searchOrders' one call per 3 min would otherwise reach the job's timeout and be counted
#: (and logged) as a failure although every page was committed.
IMPORT_RUN_BUDGET = 900.0
#: SKUs per push: larger sets are split over several submissions.
MAX_PUSH_BATCH = 10_000
#: seconds before asking again for channel work still in preparation (a report)
NOT_READY_DELAY = 60.0


def wanted(kind: str, cfg: "IntegrationConfig") -> bool:
    """Whether the integration's settings ask for this job at all."""
    if kind == "import_stock":
        return cfg.inventory in ("FBA", "both")
    if kind in ("push_stock",):
        return cfg.inventory in ("MFN", "both")
    return True


#: the import kinds; what each applies to the store is ``_APPLY[kind]``
IMPORTS = ("import_orders", "import_products", "import_stock")
#: jobs another process (the CLI) may ask a running daemon to run now: they send local
#: changes out (stock, prices, shipments; fetch_tracking also sends new MCF orders)
NUDGEABLE = frozenset({"push_stock", "push_prices", "confirm_shipment", "fetch_tracking"})


@dataclass(frozen=True)
class ImportRun:
    """How one import run ended: what the command line needs to draw and to go on."""

    items: int
    done: bool  #: the channel has nothing more to give now (caught up)
    waiting: bool  #: the channel is still preparing the data (a report): ask again later


#: called after each committed page of an import, with the page
PageObserver = Callable[[Page], None]


async def run(daemon: JobContext, integration: Integration, hooks: "ChannelHooks", kind: str) -> None:
    job = _JOBS[kind]
    await job(daemon, integration, hooks)


async def run_import(daemon: JobContext, integration: Integration, hooks: "ChannelHooks", kind: str,
                     on_page: PageObserver | None = None, *,
                     members: "Sequence[Integration] | None" = None,
                     reread_from: datetime | None = None) -> ImportRun:
    """One run of an import job, telling how it ended (the scheduler's runs do not ask).

    A job the channel declares account-scoped runs for this integration alone, with the
    account's cursor (its per-marketplace watermarks keep the others where they were).
    """
    if is_account_scoped(hooks, kind):
        return await run_account_import(daemon, list(members or [integration]), hooks, kind,
                                        on_page, reread_from=reread_from)
    return await _import(daemon, integration, hooks, kind, _APPLY[kind], on_page,
                         reread_from=reread_from)


def is_account_scoped(hooks: "ChannelHooks", kind: str) -> bool:
    return any(job.kind == kind and job.scope == "account" for job in hooks.info.jobs)


async def run_account(daemon: JobContext, members: "list[Integration]", hooks: "ChannelHooks",
                      kind: str) -> None:
    """The scheduler's run of an account-scoped job, for the account's LIVE integrations."""
    await run_account_import(daemon, members, hooks, kind)


async def run_account_import(daemon: JobContext, members: "list[Integration]",
                             hooks: "ChannelHooks", kind: str,
                             on_page: PageObserver | None = None, *,
                             reread_from: datetime | None = None) -> ImportRun:
    """One run of an account-scoped import: one hook call per page for every member."""
    if kind not in _ROUTED:
        raise ValueError(f"{kind} cannot be account-scoped")
    return await _import(daemon, members[0], hooks, kind, _APPLY[kind], on_page,
                         members=tuple(members), reread_from=reread_from)


def record_outcome(session: Session, integration_id: int, outcome: JobOutcome) -> None:
    job_runs.finished(session, integration_id, outcome.spec.kind,
                      error=None if outcome.ok else outcome.error,
                      next_run_at=outcome.next_due)


# --- imports -----------------------------------------------------------------------------------


async def _import(daemon: JobContext, integration: Integration, hooks: "ChannelHooks",
                  kind: str, apply: Callable[..., Any],
                  on_page: PageObserver | None = None,
                  members: "tuple[Integration, ...] | None" = None,
                  reread_from: datetime | None = None) -> ImportRun:
    """Page through an import; each page and its cursor are committed together.

    An empty page that is not done means "the channel is still preparing it" (a report):
    the cursor is kept and the job asks again a little later instead of spinning.
    With ``members`` the import serves an account: the cursor is the account's and each
    record goes to the member integration of its marketplace (``_commit_account_page``).
    """
    integration_id = daemon.integration_ids[integration.alias]
    if members is None:
        cursor = await daemon.store.read(cursors.load, integration_id, kind)
        extra: dict[str, Any] = {}
    else:
        cursor = await daemon.store.read(cursors.load_account, integration.account, kind)
        extra = {"integrations": members}
        routes = {m.marketplace: daemon.integration_ids[m.alias] for m in members}
    cursor = clamp_watermark(cursor, clock.now(), f"{integration.alias} {kind}: stored cursor")
    if reread_from is not None:
        # for the first call only, never stored: the plugin keeps the re-read's progress
        # in its own state from its first page on (``REREAD_FROM``)
        cursor = replace(cursor, state={**cursor.state, REREAD_FROM: clock.isoformat(reread_from)})
    items = 0
    found: Counter = Counter()  # account scope: records by marketplace, for the counters
    done = waiting = False
    run_started = clock.now()
    budget_ends = clock.monotonic() + IMPORT_RUN_BUDGET
    for _ in range(MAX_PAGES_PER_RUN):
        try:
            page: Page = await hooks.call(kind, integration=integration, cursor=cursor, **extra)
        except CursorExpired:
            log.info("%s %s: cursor expired; starting again from the watermark",
                     integration.alias, kind)
            # an account's state holds every marketplace's watermark: only the token goes
            cursor = Cursor(since=cursor.since, state=cursor.state if members else {})
            continue
        clamped = clamp_watermark(page.next, clock.now(),
                                  f"{integration.alias} {kind}: the channel's next cursor")
        if clamped is not page.next:
            page = replace(page, next=clamped)
        if members is None:
            changed, quarantined = await daemon.store.run(
                _commit_page, integration_id, kind, page, apply, daemon.cipher, run_started)
        else:
            changed, quarantined = await daemon.store.run(
                _commit_account_page, integration.account, routes, integration_id, kind, page,
                apply, daemon.cipher, run_started)
        _warn_quarantined(integration.alias, kind, quarantined)
        items += len(page.items)
        if members is not None:
            for item in page.items:
                found[getattr(item, "marketplace", None)] += 1
        if changed:
            daemon.stock_changed()
        if on_page is not None:
            on_page(page)
        cursor = page.next
        if page.done:
            done = True
            break
        if not page.items:
            waiting = True
            daemon.trigger(integration.alias, kind, delay=NOT_READY_DELAY)
            break
        if clock.monotonic() >= budget_ends:
            daemon.trigger(integration.alias, kind)  # go on in a fresh run, after others
            break
    else:
        daemon.trigger(integration.alias, kind)  # more pages: go on soon, after others
    if members is None:
        daemon.stats.records[(integration.alias, kind)] += items
        if items:
            log.info("%s: %s: %d record(s)", integration.alias, kind, items)
    else:
        for member in members:
            daemon.stats.records[(member.alias, kind)] += found[member.marketplace]
            if found[member.marketplace]:
                log.info("%s: %s: %d record(s)", member.alias, kind, found[member.marketplace])
    if done and kind == "import_products":
        days = daemon.integration_config(integration.alias).handling_time_days
        if await daemon.store.run(inventory.handling_times_due, integration_id, days):
            daemon.trigger(integration.alias, "push_stock")
    return ImportRun(items=items, done=done, waiting=waiting)


def clamp_watermark(cursor: Cursor, now: datetime, what: str) -> Cursor:
    """A watermark is never later than now.

    One ahead of the clock means the wall clock stepped back (NTP, a VM resumed) or was
    ahead when the watermark was taken. Waiting for the clock to catch up would import
    nothing meanwhile and then start after changes that happened in between (skipped for
    good); starting at now fetches again at most the usual overlap, which is idempotent.
    """
    if cursor.since is None or cursor.since <= now:
        return cursor
    log.warning("%s is %s ahead of the clock (%s): did the clock step back? Starting the "
                "window at now; nothing is skipped and nothing is imported twice",
                what, str(cursor.since - now).split(".")[0], clock.isoformat(now))
    return replace(cursor, since=now)


def _commit_page(session: Session, integration_id: int, kind: str, page: Page,
                 apply: Callable[..., Any], cipher, run_started,
                 save_cursor: bool = True) -> tuple[bool, list[RejectedRecord]]:
    """Apply one page; returns whether stock changed and the records new to the quarantine.

    A record imported after all (it was rejected before, an upgrade fixed its mapping)
    leaves the quarantine in the same transaction."""
    new = [rejected for rejected in page.rejected
           if quarantine.add_rejected(session, integration_id, kind, rejected)]
    changed = apply(session, integration_id, page, cipher=cipher, run_started=run_started)
    if page.items:
        quarantine.release_records(session, integration_id, kind,
                                   {_record_id(item) for item in page.items} - {None})
    if save_cursor:
        cursors.save(session, integration_id, kind, page.next)
    return bool(changed), new


def _record_id(item: Any) -> str | None:
    """The channel's id of an imported item, as a plugin names it in ``RejectedRecord``."""
    for attribute in ("channel_order_id", "channel_sku"):
        value = getattr(item, attribute, None)
        if isinstance(value, str):
            return value
    return None


def _warn_quarantined(alias: str, kind: str, records: list[RejectedRecord]) -> None:
    """One WARNING per record new to the quarantine (not per sighting: an overlapping
    import sees it again every run). Reasons name fields, never buyer data."""
    for record in records:
        log.warning("%s: %s: record %s quarantined: %s (see `marketsync quarantine list`)",
                    alias, kind, record.record_id or "(no id)", record.reason)


async def retry_quarantined(daemon: JobContext, integration: Integration, hooks: "ChannelHooks",
                            record: "quarantine.Quarantined") -> str:
    """Fetch one quarantined record from the channel again and import it if it maps now.

    Uses the channel's ``fetch_record`` hook; the record is applied exactly as the import
    would apply it (same upsert, same stock effects), without moving the import's cursor.
    :returns: ``"imported"``, ``"rejected"`` (still cannot be mapped; reason refreshed) or
        ``"gone"`` (the channel no longer has it; the row stays until dropped).
    """
    if record.kind not in _APPLY:
        raise ValueError(f"records of {record.kind!r} cannot be fetched again")
    if not hooks.supports("fetch_record"):
        raise ValueError(f"channel {integration.channel!r} cannot fetch one record again")
    page: Page = await hooks.call("fetch_record", integration=integration, kind=record.kind,
                                  record_id=record.record_id)
    integration_id = daemon.integration_ids[integration.alias]
    changed, _ = await daemon.store.run(_commit_page, integration_id, record.kind, page,
                                        _APPLY[record.kind], daemon.cipher, clock.now(), False)
    if changed:
        daemon.stock_changed()
    if any(_record_id(item) == record.record_id for item in page.items):
        log.info("%s: %s: quarantined record %s imported on retry", integration.alias,
                 record.kind, record.record_id)
        return "imported"
    return "rejected" if page.rejected else "gone"


async def import_record(daemon: JobContext, integration: Integration, hooks: "ChannelHooks",
                        kind: str, record_id: str,
                        members: "Sequence[Integration]" = ()) -> bool:
    """One record a channel notification named, fetched alone (``fetch_record``) and
    applied exactly as the import would apply it, without moving the import's cursor.

    With ``members`` (an account-scoped import) the record goes to the member integration
    of its marketplace, as a page of the account's import would; a record of none of them
    is quarantined. :returns: whether the channel gave the record back (False: gone, or
    rejected and quarantined).
    """
    if kind not in _APPLY:
        raise ValueError(f"records of {kind!r} cannot be fetched alone")
    page: Page = await hooks.call("fetch_record", integration=integration, kind=kind,
                                  record_id=record_id)
    integration_id = daemon.integration_ids[integration.alias]
    if members and kind in _ROUTED:
        routes = {m.marketplace: daemon.integration_ids[m.alias] for m in members}
        changed, quarantined = await daemon.store.run(
            _commit_account_page, integration.account, routes, integration_id, kind, page,
            _APPLY[kind], daemon.cipher, clock.now(), False)
    else:
        changed, quarantined = await daemon.store.run(
            _commit_page, integration_id, kind, page, _APPLY[kind], daemon.cipher,
            clock.now(), False)
    _warn_quarantined(integration.alias, kind, quarantined)
    if changed:
        daemon.stock_changed()
    return any(_record_id(item) == record_id for item in page.items)


def route(items, routes: dict[str, int], account: str
          ) -> tuple[dict[int, list[Any]], list[RejectedRecord]]:
    """Each record to the integration of its marketplace; one that no integration of the
    account serves becomes a rejected record (quarantined, never silently dropped)."""
    routed: dict[int, list[Any]] = {integration_id: [] for integration_id in routes.values()}
    unroutable = []
    for item in items:
        marketplace = getattr(item, "marketplace", None)
        target = routes.get(marketplace)
        if target is None:
            record_id = getattr(item, "channel_order_id", None)
            unroutable.append(RejectedRecord(
                record_id=record_id,
                reason=f"marketplace {marketplace!r} is not imported by any integration of "
                       f"account {account!r}",
                raw={"record_id": record_id, "marketplace": marketplace}))
            continue
        routed[target].append(item)
    return routed, unroutable


def _commit_account_page(session: Session, account: str, routes: dict[str, int],
                         lead_id: int, kind: str, page: Page, apply: Callable[..., Any],
                         cipher, run_started, save_cursor: bool = True
                         ) -> tuple[bool, list[RejectedRecord]]:
    """``_commit_page`` for each integration of the account with its share of the page
    (rejected records under the first), then the account's cursor, in one transaction."""
    routed, unroutable = route(page.items, routes, account)
    changed, new = False, []
    for integration_id, found in routed.items():
        rejected = (*page.rejected, *unroutable) if integration_id == lead_id else ()
        if not found and not rejected:
            continue
        part = Page(items=found, next=page.next, done=page.done, rejected=rejected)
        part_changed, part_new = _commit_page(session, integration_id, kind, part, apply,
                                              cipher, run_started, save_cursor=False)
        changed, new = changed or part_changed, new + part_new
    # a record the plugin rejected earlier is quarantined under whichever integration was
    # first then, whatever its marketplace: imported now, it leaves every member's queue
    imported = {_record_id(item) for found in routed.values() for item in found} - {None}
    if imported:
        for integration_id in routes.values():
            quarantine.release_records(session, integration_id, kind, imported)
    if save_cursor:
        cursors.save_account(session, account, kind, page.next)
    return changed, new


def _apply_orders(session: Session, integration_id: int, page: Page, *, cipher, run_started) -> bool:
    result = orders.apply_channel_orders(session, integration_id, page.items, cipher=cipher)
    return result.stock_changed > 0


def _apply_listings(session: Session, integration_id: int, page: Page, *, cipher, run_started) -> bool:
    complete = bool(page.done and page.next.state.get("complete"))
    counts = products.apply_channel_listings(
        session, integration_id, page.items, complete,
        snapshot_started=run_started if complete else None,
        snapshot_at=_snapshot_at(page.next.state.get("snapshot_at"), run_started))
    return counts.get("opened", 0) > 0


def _snapshot_at(value: object, default: datetime) -> datetime:
    """The plugin's ``snapshot_at``, capped at ``default`` (the run's start): a moment
    later than the data really is would count later orders as already excluded."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return default
        if parsed.tzinfo is not None:
            return min(parsed, default)
    return default


def _apply_stock(session: Session, integration_id: int, page: Page, *, cipher, run_started) -> bool:
    products.apply_channel_stock(session, integration_id, page.items)
    return False


#: import kinds whose records name their marketplace, so an account's page can be routed
_ROUTED = ("import_orders",)

_APPLY = {
    "import_orders": _apply_orders,
    "import_products": _apply_listings,
    "import_stock": _apply_stock,
}


async def import_orders(daemon, integration, hooks) -> None:
    await run_import(daemon, integration, hooks, "import_orders")


async def import_products(daemon, integration, hooks) -> None:
    await run_import(daemon, integration, hooks, "import_products")


async def import_stock(daemon, integration, hooks) -> None:
    await run_import(daemon, integration, hooks, "import_stock")


# --- pushes and submissions ------------------------------------------------------------------


def _next_push(session: Session, integration_id: int, handling: int, review: bool,
               limits: push_guard.ValveLimits) -> push_guard.Screened:
    batch = inventory.pending_stock_updates(session, integration_id, MAX_PUSH_BATCH,
                                            default_handling_time_days=handling)
    return push_guard.screen(session, integration_id, batch, review=review, limits=limits)


async def push_stock(daemon: JobContext, integration: Integration, hooks: "ChannelHooks") -> None:
    integration_id = daemon.integration_ids[integration.alias]
    config = daemon.integration_config(integration.alias)
    limits = push_guard.limits_from_percent(config.push_valve_zeroed_percent,
                                            config.push_valve_cut_percent)
    screened = await daemon.store.run(_next_push, integration_id, config.handling_time_days,
                                      config.review_first_push, limits)
    if screened.tripped:
        daemon.stats.valve_trips[integration.alias] += 1
        log.warning("%s: stock push held by the safety valve: %s; see `marketsync stock "
                    "plan %s`, then `marketsync stock accept %s`", integration.alias,
                    screened.tripped, integration.alias, integration.alias)
    batch = screened.batch
    if not batch.updates:
        return
    submission = await hooks.call("push_stock", integration=integration,
                                  updates=list(batch.updates))
    sent_at = clock.now()
    await daemon.store.run(inventory.record_stock_push, integration_id, batch, submission)
    if submission.results and submission.poll_after <= 0:
        daemon.stats.push_latency.observe(integration.alias, (clock.now() - sent_at).total_seconds())
    log.info("%s: pushed stock for %d SKU(s) (%s)", integration.alias, len(batch.updates),
             "accepted" if submission.poll_after <= 0 and submission.results else
             f"submission {submission.channel_id}")
    if not (submission.results and submission.poll_after <= 0):
        daemon.trigger(integration.alias, "poll_submission", delay=max(submission.poll_after, 1.0))
    else:
        daemon.trigger(integration.alias, "push_stock")  # rejected SKUs or newer changes


async def push_prices(daemon: JobContext, integration: Integration, hooks: "ChannelHooks") -> None:
    integration_id = daemon.integration_ids[integration.alias]
    updates = await daemon.store.run(products.pending_price_updates, integration_id, MAX_PUSH_BATCH)
    if not updates:
        return
    submission = await hooks.call("push_prices", integration=integration, updates=list(updates))
    await daemon.store.run(products.record_price_push, integration_id, updates, submission)
    if not (submission.results and submission.poll_after <= 0):
        daemon.trigger(integration.alias, "poll_submission", delay=max(submission.poll_after, 1.0))


def _due_submissions(session: Session, integration_id: int):
    now = transaction_now()
    return [s for s in store_submissions.in_flight(session, integration_id) if s.poll_after <= now]


def _finish(session: Session, submission_id: int, report: SubmissionReport) -> list[str]:
    store_submissions.apply_report(session, submission_id, report)
    if report.done:
        return products.apply_submission_results(session, submission_id, report.results)
    return []


async def poll_submission(daemon: JobContext, integration: Integration, hooks: "ChannelHooks") -> None:
    integration_id = daemon.integration_ids[integration.alias]
    for stored in await daemon.store.read(_due_submissions, integration_id):
        report = await hooks.call("poll_submission", integration=integration,
                                  submission=stored.to_submission())
        pending = await daemon.store.run(_finish, stored.id, report)
        if report.done and stored.kind == "stock" and not report.failed_reason:
            daemon.stats.push_latency.observe(
                integration.alias, (clock.now() - stored.submitted_at).total_seconds())
        if not report.done:
            daemon.trigger(integration.alias, "poll_submission", delay=max(report.poll_after, 1.0))
            continue
        if report.failed_reason:
            log.warning("%s: %s submission %s failed: %s", integration.alias, stored.kind,
                        stored.channel_id, report.failed_reason)
        if pending or report.failed_reason:
            daemon.trigger(integration.alias, "push_stock" if stored.kind == "stock" else "push_prices")


# --- shipments and tracking -------------------------------------------------------------------


async def confirm_shipment(daemon: JobContext, integration: Integration, hooks: "ChannelHooks") -> None:
    integration_id = daemon.integration_ids[integration.alias]
    for pending in await daemon.store.read(orders.pending_shipments, integration_id):
        key = pending.shipment.key
        try:
            confirmation = await hooks.call("confirm_shipment", integration=integration,
                                            shipment=pending.shipment)
        except RecordRejected as error:
            await daemon.store.run(orders.mark_shipment_failed, key, error.reason, final=True,
                                   sent=pending.shipment)
            log.warning("%s: shipment %s refused by the channel: %s", integration.alias, key,
                        error.reason)
            continue
        if not await daemon.store.run(orders.mark_shipment_confirmed, key, confirmation,
                                      pending.shipment):
            log.info("%s: shipment %s corrected or not confirmed; sent again on the next run",
                     integration.alias, key)
            continue
        log.info("%s: shipment %s confirmed%s", integration.alias, key,
                 " (already confirmed)" if confirmation.already_confirmed else "")


async def fetch_tracking(daemon: JobContext, integration: Integration, hooks: "ChannelHooks") -> None:
    integration_id = daemon.integration_ids[integration.alias]
    if hooks.supports("create_fulfillment"):
        await _send_fulfillments(daemon, integration, hooks, integration_id)
    refs = await daemon.store.read(orders.open_fulfillments, integration_id)
    if not refs:
        return
    infos = await hooks.call("fetch_tracking", integration=integration, fulfillments=refs)
    origins = await daemon.store.run(orders.apply_tracking, integration_id, list(infos))
    for alias, known_id in daemon.integration_ids.items():
        if known_id in origins:  # the channel the order came from hears the tracking now
            daemon.trigger(alias, "confirm_shipment")


async def _send_fulfillments(daemon: JobContext, integration: Integration, hooks: "ChannelHooks",
                             integration_id: int) -> None:
    """MCF orders recorded locally go to the channel first (idempotent by our id)."""
    contact = getattr(daemon.integration_config(integration.alias), "contact", None)
    requests, problems = await daemon.store.read(
        fulfillment.unsent, integration_id, daemon.cipher,
        fulfillment.Contact(contact.phone, contact.email, contact.mode) if contact else None)
    for reference, reason in problems.items():
        await daemon.store.run(fulfillment.mark_rejected, integration_id, reference, reason)
        log.warning("%s: MCF order %s not sent: %s", integration.alias, reference, reason)
    for request in requests:
        try:
            created = await hooks.call("create_fulfillment", integration=integration, request=request)
        except RecordRejected as error:
            await daemon.store.run(fulfillment.mark_rejected, integration_id,
                                   request.fulfillment_order_id, error.reason)
            log.warning("%s: MCF order %s refused by the channel: %s", integration.alias,
                        request.fulfillment_order_id, error.reason)
            continue
        await daemon.store.run(fulfillment.mark_sent, integration_id, request.fulfillment_order_id)
        log.info("%s: MCF order %s %s", integration.alias, request.fulfillment_order_id,
                 "created" if created else "already with the channel")


_JOBS = {
    "import_orders": import_orders,
    "import_products": import_products,
    "import_stock": import_stock,
    "push_stock": push_stock,
    "push_prices": push_prices,
    "poll_submission": poll_submission,
    "confirm_shipment": confirm_shipment,
    "fetch_tracking": fetch_tracking,
}
