"""One function per job kind: call the channel hook, hand the answer to the store.

The scheduler decides *when*; these functions decide *what* to ask and commit each page
or result in one transaction with the cursor it belongs to (Meltano's "furthest
confirmed progress"), so a crash between two pages loses nothing and repeats nothing
that matters. Stock arithmetic stays in ``core.inventory``/``core.orders``; this module
only moves values between the plugin and those functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from marketsync.core import inventory, orders, products
from marketsync.core.errors import CursorExpired, RecordRejected
from marketsync.core.scheduler import JobOutcome
from marketsync.core.store import cursors, job_runs, quarantine
from marketsync.core.store import submissions as store_submissions
from marketsync.core.types import Cursor, Integration, Page, Priority

if TYPE_CHECKING:  # pragma: no cover
    from marketsync.core.app import Daemon
    from marketsync.core.config import IntegrationConfig
    from marketsync.core.plugins import ChannelHooks

log = logging.getLogger(__name__)

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
#: SKUs per push: larger sets are split over several submissions.
MAX_PUSH_BATCH = 10_000


def wanted(kind: str, cfg: "IntegrationConfig") -> bool:
    """Whether the integration's settings ask for this job at all."""
    if kind == "import_stock":
        return cfg.inventory in ("FBA", "both")
    if kind in ("push_stock",):
        return cfg.inventory in ("MFN", "both")
    return True


async def run(daemon: "Daemon", integration: Integration, hooks: "ChannelHooks", kind: str) -> None:
    job = _JOBS[kind]
    await job(daemon, integration, hooks)


def record_outcome(session: Session, integration_id: int, outcome: JobOutcome) -> None:
    job_runs.finished(session, integration_id, outcome.spec.kind,
                      error=None if outcome.ok else outcome.error,
                      next_run_at=outcome.next_due)


# --- imports -----------------------------------------------------------------------------------


async def _import(daemon: "Daemon", integration: Integration, hooks: "ChannelHooks",
                  kind: str, apply: Callable[[Session, int, Page], Any]) -> int:
    """Page through an import; each page and its cursor are committed together."""
    integration_id = daemon.integration_ids[integration.alias]
    cursor = await daemon.store.read(cursors.load, integration_id, kind)
    items = 0
    for _ in range(MAX_PAGES_PER_RUN):
        try:
            page: Page = await hooks.call(kind, integration=integration, cursor=cursor)
        except CursorExpired:
            log.info("%s %s: cursor expired; starting again from the watermark",
                     integration.alias, kind)
            cursor = Cursor(since=cursor.since, state={})
            continue
        result = await daemon.store.run(_commit_page, integration_id, kind, page, apply)
        items += len(page.items)
        _after_apply(daemon, result)
        cursor = page.next
        if page.done:
            break
    daemon.stats.records[(integration.alias, kind)] += items
    return items


def _commit_page(session: Session, integration_id: int, kind: str, page: Page,
                 apply: Callable[[Session, int, Page], Any]) -> Any:
    for rejected in page.rejected:
        quarantine.add(session, integration_id, kind, rejected.record_id, rejected.reason,
                       rejected.raw)
    result = apply(session, integration_id, page)
    cursors.save(session, integration_id, kind, page.next)
    return result


def _after_apply(daemon: "Daemon", result: Any) -> None:
    """Stock changed somewhere: ask every affected integration for a push soon."""
    for alias in getattr(result, "push_aliases", ()) or ():
        daemon.trigger(alias, "push_stock")


def _apply_orders(session: Session, integration_id: int, page: Page) -> Any:
    return orders.apply_channel_orders(session, integration_id, page.items)


def _apply_listings(session: Session, integration_id: int, page: Page) -> Any:
    return products.apply_channel_listings(session, integration_id, page.items,
                                           complete=bool(page.done and page.next.state.get("complete")))


def _apply_stock(session: Session, integration_id: int, page: Page) -> Any:
    return inventory.apply_channel_stock(session, integration_id, page.items)


async def import_orders(daemon, integration, hooks) -> None:
    await _import(daemon, integration, hooks, "import_orders", _apply_orders)


async def import_products(daemon, integration, hooks) -> None:
    await _import(daemon, integration, hooks, "import_products", _apply_listings)


async def import_stock(daemon, integration, hooks) -> None:
    await _import(daemon, integration, hooks, "import_stock", _apply_stock)


# --- pushes and submissions ------------------------------------------------------------------


async def push_stock(daemon, integration, hooks) -> None:
    await _push(daemon, integration, hooks, "stock")


async def push_prices(daemon, integration, hooks) -> None:
    await _push(daemon, integration, hooks, "prices")


async def _push(daemon: "Daemon", integration: Integration, hooks: "ChannelHooks", kind: str) -> None:
    integration_id = daemon.integration_ids[integration.alias]
    pending = (inventory.pending_stock_updates if kind == "stock"
               else products.pending_price_updates)
    batch = await daemon.store.run(pending, integration_id, MAX_PUSH_BATCH)
    if not batch.updates:
        return
    hook = "push_stock" if kind == "stock" else "push_prices"
    submission = await hooks.call(hook, integration=integration, updates=list(batch.updates))
    submission_id = await daemon.store.run(store_submissions.record, integration_id, kind,
                                           submission, batch.sent)
    if submission.results and submission.poll_after <= 0:
        await daemon.store.run(_finish_submission, submission_id, list(submission.results), None)
    else:
        daemon.trigger(integration.alias, "poll_submission")


def _finish_submission(session: Session, submission_id: int, results, failed_reason) -> None:
    row = store_submissions.finish(session, submission_id, results, failed_reason)
    if row.kind == "stock":
        inventory.apply_push_results(session, row, results, failed_reason)
    else:
        products.apply_price_results(session, row, results, failed_reason)


async def poll_submission(daemon: "Daemon", integration: Integration, hooks: "ChannelHooks") -> None:
    integration_id = daemon.integration_ids[integration.alias]
    for row in await daemon.store.read(store_submissions.due, integration_id):
        report = await hooks.call("poll_submission", integration=integration,
                                  submission=store_submissions.to_submission(row))
        if report.done:
            await daemon.store.run(_finish_submission, row.id, list(report.results),
                                   report.failed_reason)
            if report.failed_reason:
                log.warning("%s: submission %s failed: %s", integration.alias, row.channel_id,
                            report.failed_reason)
                daemon.trigger(integration.alias, "push_stock" if row.kind == "stock"
                               else "push_prices")
        else:
            await daemon.store.run(store_submissions.poll_later, row.id, report.poll_after)


# --- shipments and tracking -------------------------------------------------------------------


async def confirm_shipment(daemon: "Daemon", integration: Integration, hooks: "ChannelHooks") -> None:
    integration_id = daemon.integration_ids[integration.alias]
    for shipment in await daemon.store.run(orders.claim_pending_shipments, integration_id):
        try:
            confirmation = await hooks.call("confirm_shipment", integration=integration,
                                            shipment=shipment)
        except RecordRejected as error:
            await daemon.store.run(orders.mark_shipment_failed, shipment.key, error.reason)
            continue
        await daemon.store.run(orders.mark_shipment_confirmed, shipment.key, confirmation)


async def fetch_tracking(daemon: "Daemon", integration: Integration, hooks: "ChannelHooks") -> None:
    integration_id = daemon.integration_ids[integration.alias]
    refs = await daemon.store.read(orders.open_fulfillments, integration_id)
    if not refs:
        return
    infos = await hooks.call("fetch_tracking", integration=integration, fulfillments=refs)
    await daemon.store.run(orders.apply_tracking, integration_id, list(infos))


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
