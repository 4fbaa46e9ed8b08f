"""The plugin contract: every hook a marketsync plugin can implement.

This module *is* the reference for plugin authors: each hook's docstring says what it
receives, what it returns, which errors it may raise and who calls it.

There are two kinds of hooks.

**Channel hooks** (``firstresult=True``) are answered by exactly one plugin: the one that
serves the integration's channel. The core routes each call to that plugin only (a
per-channel ``subset_hook_caller``, see ``core/runtime/plugins.py``), so a plugin never has to
check whether an integration is its own, and two plugins claiming one channel is an
error at start-up. A channel hook may be implemented as ``async def`` or as a plain
function; the core awaits the answer when it is awaitable. The specs below are written
``async def`` purely as documentation of that.

**Broadcast hooks** go to every plugin, are synchronous, must return quickly and must not
raise (the core logs and swallows what they raise).

Errors: a channel hook reports failure by raising one of ``marketsync.core.errors``;
the table in that module says which integration state each leads to. Any other exception
is treated as a bug in the plugin: logged once with its traceback, the job backs off, the
rest of the daemon goes on.

Rules for implementations (pluggy's): take the arguments by the names below (any subset,
in any order); never give them defaults; new arguments may be added to a spec later,
existing ones are never renamed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from marketsync.core import hookspec
from marketsync.core.types import (
    AccountInfo,
    ChannelInfo,
    ChannelListing,
    ChannelOrder,
    ChannelStock,
    Cursor,
    FulfillmentRef,
    FulfillmentRequest,
    Integration,
    Notice,
    Page,
    PriceUpdate,
    Shipment,
    ShipmentConfirmation,
    StockUpdate,
    Submission,
    SubmissionReport,
    TrackingInfo,
)

#: Channel hooks, in the order a new plugin author usually writes them.
CHANNEL_HOOKS = (
    "channel_info",
    "check_credentials",
    "authorization_url",
    "complete_authorization",
    "import_orders",
    "import_products",
    "import_stock",
    "fetch_record",
    "push_stock",
    "push_prices",
    "poll_submission",
    "confirm_shipment",
    "create_fulfillment",
    "fetch_tracking",
    "sandbox_app",
)

#: Channel hooks that may serve a whole account in one call: a plugin marks the job
#: ``JobDefault(scope="account")`` and takes ``integrations`` (see :func:`import_orders`).
ACCOUNT_SCOPED_HOOKS = ("import_orders",)

#: Broadcast hooks: every plugin is called.
CHANNEL_HOOKS += ("subscribe_notifications", "unsubscribe_notifications", "read_notification")
BROADCAST_HOOKS = ("register_commands", "integration_state_changed")


# --- describing the channel ---------------------------------------------------------------


@hookspec(firstresult=True)
def channel_info() -> ChannelInfo:
    """Describe the channel this plugin serves.

    A plugin is a *channel plugin* when it implements this hook. The core calls it once
    at start-up, learns the channel's name from the answer, and from then on routes every
    channel hook for integrations with ``channel: <name>`` to this plugin alone.

    The answer also carries what the core needs to run the channel without knowing it:
    the marketplaces a YAML ``marketplace:`` may name, the credential keys an account
    takes (and which are secrets), the jobs with their default schedule and priority,
    the published usage plans (rate and burst per operation, and a ``DailyQuota`` when the
    channel limits calls per day, as eBay does), how an operation maps to a rate-limit
    bucket (``bucket_key``), and which response header reports the live rate. Live daily
    figures a channel reports through an API go to ``integration.report_quota``.

    :returns: a :class:`~marketsync.core.types.ChannelInfo`; must not do I/O.
    :raises: nothing; an exception here disables the plugin's channel with the reason.

    Called by: plugin loading (``core/runtime/plugins.py``), once per process.
    """


# --- the integration's credentials ---------------------------------------------------------


@hookspec(firstresult=True)
async def check_credentials(integration: Integration) -> AccountInfo:
    """Prove that the integration can talk to its channel with its credentials.

    This is the "Retry" of an integration: the core calls it when the integration starts,
    after ``marketsync retry ALIAS`` or the status page's Retry button, after a connect
    flow stored new credentials, and with growing backoff while the integration is in
    ``RETRY``. Success makes the integration ``LIVE`` and starts its jobs.

    :param integration: the integration to check; ``integration.http`` is governed.
    :returns: :class:`~marketsync.core.types.AccountInfo` (seller id and the marketplace
        codes the account can sell in). The plugin should raise ``IntegrationError`` if
        the integration's marketplace is not among them.
    :raises IntegrationAuthFailed: credentials refused → ``INCOMPLETE`` (needs re-consent).
    :raises IntegrationNotReady: channel unreachable or not ready → ``RETRY`` with backoff.
    :raises IntegrationError: a permanent problem, e.g. "this account does not sell in
        SE" → ``ERROR``.

    Called by: the integration runner (``core/runtime/runner.py``) and the ``retry`` command.
    """


@hookspec(firstresult=True)
def authorization_url(integration: Integration, state: str, redirect_uri: str) -> str:
    """The URL where the seller grants this application access (OAuth consent).

    The core makes ``state`` (one-time, random, stored) and checks it when the channel
    redirects back; the plugin only builds the URL.

    :param integration: the integration being connected.
    :param state: the one-time value the channel must send back unchanged.
    :param redirect_uri: where the channel sends the seller back (the daemon's callback).
    :returns: an absolute URL to open in the seller's browser.

    Called by: ``marketsync connect`` and the status page's Connect button.
    """


@hookspec(firstresult=True)
async def complete_authorization(
    integration: Integration, params: Mapping[str, str], redirect_uri: str
) -> Mapping[str, str]:
    """Exchange what the channel's redirect carried for long-lived credentials.

    :param integration: the integration being connected.
    :param params: the redirect's query parameters (the core has already checked
        ``state``), or ``{"code": ...}`` when the seller pasted a code by hand.
    :param redirect_uri: the same redirect URI that was given to :func:`authorization_url`.
    :returns: credential keys to store for the integration's account (e.g.
        ``{"refresh_token": ...}``); the core encrypts and stores them, then calls
        :func:`check_credentials`.
    :raises IntegrationAuthFailed: the channel refused the code.

    Called by: the OAuth callback of the HTTP surface and ``marketsync connect``.
    """


# --- imports --------------------------------------------------------------------------------


@hookspec(firstresult=True)
async def import_orders(
    integration: Integration, integrations: Sequence[Integration], cursor: Cursor
) -> Page[ChannelOrder]:
    """Return one page of orders created or updated since ``cursor``.

    **Scope.** By default the job is per integration: ``integrations`` is
    ``(integration,)`` and the cursor is the integration's own. A channel whose order API
    answers for a whole seller account (Amazon's ``searchOrders`` names up to 50
    marketplaces in one call and allows one call per three minutes per account; eBay's
    order calls are per seller) declares ``JobDefault(kind="import_orders",
    scope="account")``. Then the core runs **one job per account** and calls the hook with:

    - ``integrations``: every integration of the account on this channel that is ``LIVE``
      now (one per marketplace; the account and credentials are theirs in common);
    - ``integration``: the first of them, whose governed ``http`` client and credentials
      serve the account's calls;
    - ``cursor``: the account's cursor (one per account and job kind, not per
      integration), committed with each page as usual.

    The core routes each returned order to the integration of the account whose
    ``marketplace`` equals ``order.marketplace``; an order no integration of the account
    serves is quarantined (with ``page.rejected``, under ``integration``), never
    dropped. Which integrations take part may change between calls (one goes
    ``INCOMPLETE``, one is added), so the plugin keeps per-marketplace progress in
    ``cursor.state`` — by convention ``cursor.state["watermarks"]``, marketplace code →
    ISO time: everything of that marketplace changed before it is imported. Upgrading
    from per-integration cursors, the core's migration writes each integration's
    watermark there (and the lowest as ``cursor.since``), so nothing is re-imported or
    skipped. When a page token expires the core drops the token but keeps ``since`` and
    ``state``; a cursor without a token is always a fresh query. The job can be woken
    from any integration of the account (``JobContext.trigger(alias, "import_orders")``
    with any member's alias).

    The core upserts the page's orders (by integration and channel order id) and stores
    ``page.next`` in the same transaction, then calls again with ``page.next`` until
    ``page.done``. On the first run ``cursor.since`` is ``None``: the plugin goes back the
    integration's ``history_days``. Pages may overlap earlier ones (the plugin should
    re-read a safety window, since channels publish changes late); the core's upsert
    makes overlap harmless. A record the plugin cannot map goes into ``page.rejected``
    with its reason, never into an exception: the core quarantines it and goes on.

    **Re-reading a window** (``marketsync sync ALIAS import_orders --since 7d``). A
    channel whose ``ChannelInfo.reread_days`` is positive may receive
    ``cursor.state[REREAD_FROM]`` (``core/types.py``; an ISO-8601 UTC time, never
    further back than ``reread_days``) on one call, besides whatever the stored cursor
    holds. The plugin then reads everything changed since that time again, keeping its
    progress in its own state from its first page on (the key is never stored), and
    ends by giving back a cursor whose watermarks are no later than they were: the normal
    import goes on and skips nothing. The core merges what is read again with what it
    stores (lines by id, or by SKU for ``PROVISIONAL_ITEM_ID`` lines; an order whose
    ``updated_at`` is older than the stored one changes nothing). A channel with
    ``reread_days = 0`` never receives the key; the command says it cannot.

    :param integration: the integration whose orders to read (account scope: the one
        whose client serves the account).
    :param integrations: ``(integration,)``, or every LIVE integration of the account.
    :param cursor: the last committed cursor (``Cursor()`` on the first run).
    :returns: :class:`~marketsync.core.types.Page` of
        :class:`~marketsync.core.types.ChannelOrder`.
    :raises CursorExpired: the page token in ``cursor`` is no longer valid; the core
        retries from the last committed watermark.
    :raises Throttled, TransientError: the job backs off and tries again later.
    :raises IntegrationAuthFailed: the integration goes ``INCOMPLETE``.

    Idempotency: calling twice with the same cursor must be safe.
    Called by: the ``import_orders`` job (``core/runtime/jobs.py``).
    """


@hookspec(firstresult=True)
async def import_products(integration: Integration, cursor: Cursor) -> Page[ChannelListing]:
    """Return one page of the channel's listings (SKU, ASIN, title, price, status).

    Used to map listings to local products and to bring back prices edited on the
    channel. Long-running channel work (an Amazon report) is followed across calls through
    ``cursor.state``: return ``Page(done=False, items=())`` with the state to keep and the
    core calls again later; a restart resumes from the stored cursor instead of starting
    the work again. A listing the channel no longer has is returned with
    ``status="Deleted"`` or simply omitted from a complete snapshot (``page.next.state``
    may say ``{"complete": true}``, then the core marks missing listings off-channel).
    ``page.next.state["snapshot_at"]`` (ISO 8601), when given, is the moment the quantities
    were read on the channel: orders purchased before it count as already missing from
    them when the core works out a new product's opening stock (default: the run's start).

    :param integration: the integration whose listings to read.
    :param cursor: the last committed cursor.
    :returns: :class:`~marketsync.core.types.Page` of
        :class:`~marketsync.core.types.ChannelListing`.
    :raises Throttled, TransientError, CursorExpired, IntegrationAuthFailed: as
        :func:`import_orders`.

    Called by: the ``import_products`` job.
    """


@hookspec(firstresult=True)
async def import_stock(integration: Integration, cursor: Cursor) -> Page[ChannelStock]:
    """Return one page of channel-owned stock (Amazon FBA): imported, never pushed.

    :param integration: the integration whose channel-held stock to read.
    :param cursor: the last committed cursor.
    :returns: :class:`~marketsync.core.types.Page` of
        :class:`~marketsync.core.types.ChannelStock`.
    :raises Throttled, TransientError, CursorExpired, IntegrationAuthFailed: as
        :func:`import_orders`.

    Called by: the ``import_stock`` job.
    """


@hookspec(firstresult=True)
async def fetch_record(integration: Integration, kind: str, record_id: str) -> Page[Any]:
    """Fetch one record again, as the channel has it now, and map it as ``kind`` would.

    This is how ``marketsync quarantine retry`` works: a record an import could not map
    (``page.rejected``) is asked for again by its id, typically after an upgrade that fixes
    the mapping, and the core applies the answer exactly as the import would (same
    upsert, same stock effects) without moving the import's cursor. A new hook rather
    than a second use of the import hooks, because an import is paged by time and cannot
    be asked for one id. Optional: a channel without it cannot retry (the command says so).

    :param integration: the integration the record came from.
    :param kind: the import that rejected it (``"import_orders"``, ...).
    :param record_id: the ``RejectedRecord.record_id`` it was quarantined under.
    :returns: a :class:`~marketsync.core.types.Page` (``done=True``) holding the mapped
        record in ``items``, or in ``rejected`` (with the reason) when it still cannot be
        mapped, or neither when the channel no longer has it. ``next`` is ignored.
    :raises Throttled, TransientError, IntegrationAuthFailed: as :func:`import_orders`.

    Idempotency: read-only on the channel; applying the answer twice is harmless.
    Called by: ``marketsync quarantine retry`` (``core/runtime/jobs.py`` ``retry_quarantined``).
    """


# --- pushes ---------------------------------------------------------------------------------


@hookspec(firstresult=True)
async def push_stock(integration: Integration, updates: Sequence[StockUpdate]) -> Submission:
    """Send quantities (and handling time, and a price when one is due too) per channel SKU.

    The core decides *what* to send (the difference between the quantity each listing
    should have and the one the channel last acknowledged); the plugin decides *how*
    (per-item calls for a few SKUs, one bulk feed for many). It returns as soon as the
    channel has taken the work; the core stores the returned submission before anything
    else and follows it with :func:`poll_submission`, also after a restart.

    Quantity, handling time and price of one listing travel in one message: the core fills
    ``StockUpdate.price`` whenever a local price is due for a merchant-fulfilled listing
    (and asks for this push as soon as the price is set), so a plugin must send all three
    in the same channel message where the channel allows it (Amazon: one Listings patch
    or one JSON_LISTINGS_FEED message). The update type was extended rather than the two
    hooks merged: ``push_prices`` still serves listings that have no quantity of ours
    (FBA), and a plugin without prices keeps implementing ``push_stock`` alone. A refusal
    of a message that carried a price is taken as the price's: the price waits after
    refusals, the quantity goes again alone at once.

    :param integration: the integration to push to.
    :param updates: one :class:`~marketsync.core.types.StockUpdate` per channel SKU.
    :returns: a :class:`~marketsync.core.types.Submission`. Results known at once (a
        synchronous API) go in ``submission.results`` with ``poll_after=0``.
    :raises Throttled, TransientError: nothing was taken; the core pushes again later.
    :raises IntegrationAuthFailed: the integration goes ``INCOMPLETE``.

    Called by: the ``push_stock`` job, soon after a stock change (on-demand trigger).
    """


@hookspec(firstresult=True)
async def push_prices(integration: Integration, updates: Sequence[PriceUpdate]) -> Submission:
    """Send prices set locally for channel SKUs whose price cannot ride with a stock push
    (FBA listings, listings not mapped to a product); same contract as :func:`push_stock`.

    :param integration: the integration to push to.
    :param updates: one :class:`~marketsync.core.types.PriceUpdate` per SKU.
    :returns: a :class:`~marketsync.core.types.Submission`.
    :raises Throttled, TransientError, IntegrationAuthFailed: as :func:`push_stock`.

    Called by: the ``push_prices`` job.
    """


@hookspec(firstresult=True)
async def poll_submission(integration: Integration, submission: Submission) -> SubmissionReport:
    """Report how a submission returned by a push is doing.

    :param integration: the integration the submission was sent to.
    :param submission: as returned by the push (and stored by the core).
    :returns: :class:`~marketsync.core.types.SubmissionReport`: ``done`` with per-SKU
        accepted/rejected results, or not yet done with ``poll_after`` seconds. A
        submission the channel lost or failed as a whole is ``done`` with
        ``failed_reason``; its SKUs are pushed again.
    :raises Throttled, TransientError: the core asks again later.

    Called by: the ``poll_submissions`` job.
    """


# --- shipments and fulfilment ------------------------------------------------------------


@hookspec(firstresult=True)
async def confirm_shipment(integration: Integration, shipment: Shipment) -> ShipmentConfirmation:
    """Confirm on the channel a shipment the seller entered locally.

    Idempotency: the same ``shipment.key`` may arrive again (a retry after a timeout, a
    restart): the plugin must never cause a second shipment on the channel, and "already
    confirmed" is a success (``already_confirmed=True``).

    :param integration: the integration the order came from.
    :param shipment: carrier, tracking number, ship date and the order lines shipped.
    :returns: :class:`~marketsync.core.types.ShipmentConfirmation`.
    :raises RecordRejected: the channel refused this shipment for good (its reason is
        shown to the seller); not retried.
    :raises Throttled, TransientError: retried later.

    Called by: the ``confirm_shipments`` job.
    """


@hookspec(firstresult=True)
async def create_fulfillment(integration: Integration, request: FulfillmentRequest) -> bool:
    """Ask the channel's fulfilment network (Amazon MCF) to ship an order from its stock.

    Idempotency: ``request.fulfillment_order_id`` is stable; when the channel already has
    an order with it, return False (not an error), so a retry after a crash creates nothing
    twice.

    :param integration: the integration whose fulfilment network ships it.
    :param request: address, lines (channel SKUs) and speed.
    :returns: True when created now, False when it existed already.
    :raises RecordRejected: the channel refused this order for good (unknown SKU, bad
        address); the reason is shown to the seller and it is not retried.
    :raises Throttled, TransientError: retried later.

    Called by: the ``fetch_tracking`` job, before it asks for tracking.
    """


@hookspec(firstresult=True)
async def fetch_tracking(
    integration: Integration, fulfillments: Sequence[FulfillmentRef]
) -> Sequence[TrackingInfo]:
    """Carrier and tracking for orders the channel fulfils for the seller (Amazon MCF).

    :param integration: the integration whose fulfilment service ships the orders.
    :param fulfillments: the open fulfilment orders the core is waiting on.
    :returns: a :class:`~marketsync.core.types.TrackingInfo` per fulfilment order the
        channel knows; entries not yet shipped may be omitted.
    :raises Throttled, TransientError: retried later.

    Called by: the ``fetch_tracking`` job.
    """


# --- simulation -------------------------------------------------------------------------------


@hookspec(firstresult=True)
def sandbox_app(scenario: Any) -> Any:
    """An ASGI application that simulates the channel, for tests and ``marketsync demo``.

    :param scenario: a path to a scenario file, or ``None`` for the plugin's default.
    :returns: an ASGI 3 application.

    Called by: ``marketsync demo``, ``marketsync sandbox serve`` and tests.
    """


# --- broadcast hooks -------------------------------------------------------------------------


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``marketsync`` command line.

    :param cli: the top-level click group; add commands or groups to it.

    Called by: ``daemon.py`` when the CLI is built. Must not do I/O.
    """


@hookspec
def integration_state_changed(
    integration: Integration, old: str, new: str, reason: str | None
) -> None:
    """Observe an integration's state change (for notifications or metrics).

    :param integration: the integration that changed.
    :param old: the previous state's name, e.g. ``"LIVE"``.
    :param new: the new state's name, e.g. ``"INCOMPLETE"``.
    :param reason: why, for people (never contains secrets).

    Called by: the integration runner on every transition. Must return quickly.
    """


# --- notifications (optional) ----------------------------------------------------------------


@hookspec(firstresult=True)
async def subscribe_notifications(integration: Integration, queue_url: str) -> Sequence[str]:
    """Have the channel publish its change notifications to the account's queue.

    Idempotent: a destination or subscription that exists already is reused and reported.

    :param integration: any integration of the account (notifications are per seller).
    :param queue_url: the SQS queue URL from the account's ``notifications`` settings.
    :returns: one line per step, for people (no secrets).
    :raises IntegrationAuthFailed, Throttled, TransientError: as for any call.

    Called by: ``marketsync notifications subscribe``.
    """


@hookspec(firstresult=True)
def read_notification(body: str) -> Notice:
    """Read one message from the account's notifications queue.

    The core consumes the queue (long polling, dedupe by ``notification_id``, delete after
    the store commits) and triggers ``Notice.job`` for every integration of the account;
    what a message looks like, and which job fetches what it announces, is the channel's.
    Synchronous and without I/O: it only parses.

    :param body: the message body as the queue delivered it.
    :returns: a :class:`~marketsync.core.types.Notice`; ``job`` None for a type the daemon
        does not act on (remembered, then deleted). With ``record_id`` and ``marketplace``
        set, the core fetches that one record with ``fetch_record(kind=job)`` for the
        integration of that marketplace (no integration: counted, nothing fetched), and
        runs ``job`` only if the fetch fails. With ``job == "poll_submission"``, the
        submission whose channel id is ``subject`` is polled at once.
    :raises BadNotification: not a notification of this channel (logged, then deleted so
        it cannot block the queue).

    Called by: the notifications consumer (``core/runtime/notifications.py``).
    """


@hookspec(firstresult=True)
async def unsubscribe_notifications(integration: Integration) -> Sequence[str]:
    """Stop the channel's notifications for the account (the queue itself stays).

    :param integration: any integration of the account.
    :returns: one line per notification type, for people.
    :raises IntegrationAuthFailed, Throttled, TransientError: as for any call.

    Called by: ``marketsync notifications unsubscribe``.
    """
