"""Plugin-facing value types: what hooks receive and return.

These dataclasses are the plugin API; the ORM models in ``core.store`` are not, and the
store converts between the two. Money is ``Decimal`` plus an ISO 4217 currency; times
are aware UTC datetimes. Everything is frozen so that a value handed to a plugin cannot
be changed behind the core's back.
"""

from __future__ import annotations

import enum
import logging
import re
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    import httpx

T = TypeVar("T")

frozen = dataclass(frozen=True, slots=True, kw_only=True)


class Priority(enum.IntEnum):
    """Who goes first when calls wait for the same rate-limit bucket (lower first)."""

    URGENT = 0  #: shipment confirmation, stock push: a delay here oversells or annoys buyers
    ORDERS = 1  #: order import: new orders reserve stock
    PRODUCTS = 2  #: product, price and FBA stock import
    BACKFILL = 3  #: history backfill, reports nobody is waiting for


class Fulfillment(str, enum.Enum):
    MFN = "MFN"  #: merchant-fulfilled: the seller ships; stock is ours
    FBA = "FBA"  #: fulfilled by Amazon (or the channel): stock is the channel's


class OrderStatus(str, enum.Enum):
    NEW = "New"
    PARTIALLY_SHIPPED = "PartiallyShipped"
    SHIPPED = "Shipped"
    CANCELED = "Canceled"


# --- describing a channel ------------------------------------------------------------


@frozen
class DailyQuota:
    """A published "``limit`` calls per day, starting again at a fixed time" quota (eBay).

    Unlike a token bucket nothing refills during the day: a quota spent by noon is spent
    until ``resets_at`` (local time in ``timezone``, an IANA name). ``reserve`` is the share
    of the day's calls kept for urgent work (pushes, shipment confirmations), so a long
    import cannot leave a sale unpushed until the next day.
    """

    limit: int
    resets_at: time = time(0)
    timezone: str = "UTC"
    reserve: float = 0.1


@frozen
class UsagePlan:
    """A published rate limit: ``rate`` requests per second refilling a bucket of ``burst``,
    and, when the channel publishes one, a daily quota on top (``daily``)."""

    operation: str
    rate: float
    burst: int
    daily: DailyQuota | None = None


@frozen
class JobDefault:
    """A job the channel supports and how often it runs unless the YAML says otherwise."""

    kind: str  #: e.g. "import_orders"; the hook the job calls
    every: float  #: seconds between runs
    priority: Priority = Priority.PRODUCTS
    timeout: float = 600.0  #: a run longer than this is cancelled and counted as failed
    #: ``"integration"``: one run per integration. ``"account"``: one run per account for
    #: all its integrations of this channel (the hook gets them in ``integrations`` and the
    #: core routes each record to its integration by marketplace); see ``core/hookspecs.py``
    scope: str = "integration"


@frozen
class Marketplace:
    code: str  #: what users write in the YAML, e.g. "DE"
    id: str  #: the channel's own identifier, e.g. "A1PA6795UKMFR9"
    name: str
    region: str = ""
    currency: str = ""


@frozen
class ChannelInfo:
    """What a channel plugin tells the core about itself (the answer of ``channel_info``)."""

    name: str  #: the value of ``channel:`` in the YAML, e.g. "amazon"
    title: str  #: for people, e.g. "Amazon (Selling Partner API)"
    marketplaces: Mapping[str, Marketplace] = field(default_factory=dict)
    #: keys accepted in an account's ``credentials`` mapping, with a description each;
    #: keys listed in ``secret_credentials`` must be given as ``${ENV}`` or ``${file:...}``
    credential_keys: Mapping[str, str] = field(default_factory=dict)
    required_credentials: frozenset[str] = frozenset()
    secret_credentials: frozenset[str] = frozenset()
    jobs: Sequence[JobDefault] = ()
    usage_plans: Mapping[str, UsagePlan] = field(default_factory=dict)
    #: maps (integration, operation) to the governor's bucket key; calls with the same key
    #: share one bucket. Default: one bucket per (channel, account, operation).
    bucket_key: Callable[["Integration", str], tuple] | None = None
    #: response header in which the channel reports the operation's current rate, if any
    #: (SP-API: ``x-amzn-RateLimit-Limit``); the governor adapts its bucket to it
    rate_limit_header: str | None = None
    #: how many days back ``marketsync sync ALIAS import_orders --since`` may re-read the
    #: order history (the core sets ``REREAD_FROM`` in the cursor); 0: the channel cannot,
    #: and the command says so instead of pretending
    reread_days: int = 0
    #: the channel's marketplace needs PII rules etc.; free-form, documented by the plugin
    extra: Mapping[str, Any] = field(default_factory=dict)


# --- the integration a hook works for ----------------------------------------------------


class PluginState:
    """Small values a plugin must not forget on a restart (eBay's revisions per listing and
    day), kept by the core in its database; plugins cannot reach the store themselves.

    Two kinds of entry under string keys: *values* (anything JSON can hold, last write
    wins) and *counts* (integers that ``add`` raises in one statement, so two processes
    adding at once both count). ``expires_at`` (aware datetime) ends an entry: past it the
    entry reads as absent. Batch calls, because each call is a database transaction.

    This base class keeps everything in memory: what an ``Integration`` built outside the
    daemon (a test, a one-off script) gets. The daemon hands out one backed by the store,
    scoped to the plugin and the account (``account_state``) or integration (``state``).
    """

    def __init__(self) -> None:
        self._values: dict[str, tuple[Any, datetime | None]] = {}
        self._counts: dict[str, tuple[int, datetime | None]] = {}

    @staticmethod
    def _live(expires_at: datetime | None) -> bool:
        from marketsync.core import clock  # clock imports trio; types stays light to import

        return expires_at is None or expires_at > clock.now()

    async def get(self, keys: Sequence[str]) -> dict[str, Any]:
        """The live values of ``keys``; absent and expired keys are left out."""
        return {key: self._values[key][0] for key in keys
                if key in self._values and self._live(self._values[key][1])}

    async def put(self, values: Mapping[str, Any], *, expires_at: datetime | None = None) -> None:
        """Set values (``None`` deletes the key)."""
        for key, value in values.items():
            if value is None:
                self._values.pop(key, None)
            else:
                self._values[key] = (value, expires_at)

    async def counts(self, keys: Sequence[str]) -> dict[str, int]:
        """The live counts of ``keys``, 0 for absent or expired ones."""
        return {key: self._counts[key][0]
                if key in self._counts and self._live(self._counts[key][1]) else 0
                for key in keys}

    async def add(self, amounts: Mapping[str, int], *,
                  expires_at: datetime | None = None) -> dict[str, int]:
        """Add to counts (negative amounts give back); returns each count after the add.
        An expired count starts again from 0; ``expires_at`` replaces the old expiry."""
        after = {}
        for key, amount in amounts.items():
            current = (await self.counts([key]))[key]
            self._counts[key] = (current + int(amount), expires_at)
            after[key] = current + int(amount)
        return after



@dataclass(slots=True, kw_only=True)
class Integration:
    """What every channel hook receives: one configured integration and its tools.

    No database handle on purpose: plugins never write the store.
    """

    alias: str
    channel: str
    account: str  #: the account's name in the YAML; integrations of one account share it
    marketplace: str  #: marketplace code, e.g. "DE"
    settings: Mapping[str, Any]  #: the validated integration section of the YAML
    credentials: Mapping[str, str]  #: the account's credentials, secrets resolved
    http: "httpx.AsyncClient | None" = None  #: governed client (core.runtime.http)
    log: logging.LoggerAdapter | logging.Logger = field(
        default_factory=lambda: logging.getLogger("marketsync.integration")
    )
    #: scratch space shared by every integration of the same account (cached access
    #: tokens, for instance); the plugin owns its contents
    account_runtime: dict[str, Any] = field(default_factory=dict)
    #: scratch space for this integration alone
    runtime: dict[str, Any] = field(default_factory=dict)
    #: what must survive a restart, shared by the account's integrations of this channel
    #: (the daemon's is in the database; see :class:`PluginState`)
    account_state: PluginState = field(default_factory=PluginState)
    #: the same for this integration alone
    state: PluginState = field(default_factory=PluginState)
    #: ``report_quota(operation, limit, remaining, resets_at)``: tell the governor the live
    #: daily figures a channel reports (eBay's Analytics ``getRateLimits``) for the quota
    #: ``operation`` draws on; set by the core, None outside the daemon
    report_quota: Callable[[str, int, int, datetime], None] | None = None


# --- incremental imports -----------------------------------------------------------------


@frozen
class Cursor:
    """Where an import stands. The core stores it verbatim and hands it back.

    ``since`` is the watermark (everything changed before it has been imported);
    ``token`` a page token valid for a while; ``state`` any small JSON-able extra the
    plugin needs (a report id it is following, for instance).
    """

    since: datetime | None = None
    token: str | None = None
    state: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "token": self.token,
            "state": dict(self.state),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "Cursor":
        if not data:
            return cls()
        since = data.get("since")
        return cls(
            since=datetime.fromisoformat(since) if since else None,
            token=data.get("token"),
            state=dict(data.get("state") or {}),
        )


@frozen
class RejectedRecord:
    """A record the plugin could not map; the core quarantines it with the reason.

    ``raw`` is what a person needs to see what went wrong: ids, times, statuses, SKUs,
    quantities and amounts, never buyer or recipient data (the core scrubs it again by key
    name, see ``core/store/quarantine.py``). ``trace`` is a short stack summary when the
    record broke the mapping code itself rather than a check in it.
    """

    record_id: str | None
    reason: str
    raw: Any = None
    trace: str | None = None

    @classmethod
    def from_exception(cls, record_id: str | None, error: BaseException,
                       raw: Any = None) -> "RejectedRecord":
        """For a record that made the mapping code fail unexpectedly (a ``TypeError`` on a
        value of the wrong shape): the error's type, its message with every quoted value
        replaced (it may be buyer data), and where it happened."""
        return cls(record_id=record_id, reason=f"{type(error).__name__}: {_safe_message(error)}",
                   raw=raw, trace=stack_summary(error))


#: quoted words an exception message may keep: Python's own type names, never data
_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "list", "dict", "tuple", "set",
                         "NoneType", "bytes", "Decimal", "datetime"})
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
#: innermost frames kept in a stack summary
STACK_FRAMES = 4


def _safe_message(error: BaseException) -> str:
    def keep(match: re.Match[str]) -> str:
        return match.group(0) if match.group(0)[1:-1] in _TYPE_NAMES else "'…'"
    return _QUOTED.sub(keep, str(error))[:300]


def stack_summary(error: BaseException) -> str:
    """``file.py:line in function`` for the innermost frames, innermost last; no values."""
    frames = traceback.extract_tb(error.__traceback__)[-STACK_FRAMES:]
    return " > ".join(f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}"
                      for frame in frames)


@frozen
class Page(Generic[T]):
    """One page of an import: the items, the cursor to ask with next, and whether done."""

    items: Sequence[T] = ()
    next: Cursor = field(default_factory=Cursor)
    done: bool = True
    rejected: Sequence[RejectedRecord] = ()


# --- orders --------------------------------------------------------------------------------


@frozen
class Money:
    amount: Decimal
    currency: str


@frozen
class Address:
    name: str | None = None
    line1: str | None = None
    line2: str | None = None
    line3: str | None = None
    city: str | None = None
    district: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country_code: str | None = None
    phone: str | None = None


@frozen
class Buyer:
    name: str | None = None
    email: str | None = None
    phone: str | None = None


#: A ``channel_item_id`` starting with this is a stand-in: the channel's source named the
#: line by its SKU only (Amazon's order reports carry no order-item id). When the line comes
#: again with the channel's real id, the core gives the stored item that id instead of
#: adding a second line, which would reserve (and ship) its units twice.
PROVISIONAL_ITEM_ID = "provisional:"

#: The key of ``Cursor.state`` in which the core asks ``import_orders`` to read the order
#: history again from an ISO-8601 UTC time (``marketsync sync ALIAS import_orders --since``),
#: on top of what the cursor holds. It is set for one call only and never stored: the
#: plugin starts the re-read and keeps its progress in its own state, and when it is done
#: the cursor's watermarks are where they would have been without it (or earlier), so the
#: normal import loses nothing. Only a channel whose ``ChannelInfo.reread_days`` is
#: positive receives it.
REREAD_FROM = "reread_from"


@frozen
class ChannelOrderItem:
    channel_item_id: str
    channel_sku: str
    quantity: int
    quantity_shipped: int = 0
    asin: str | None = None
    title: str | None = None
    unit_price: Money | None = None
    tax: Money | None = None


@frozen
class ChannelOrder:
    channel_order_id: str
    marketplace: str  #: marketplace code, e.g. "DE"
    status: OrderStatus
    channel_status: str  #: the channel's own word, kept for people
    fulfillment: Fulfillment
    purchased_at: datetime
    updated_at: datetime
    items: Sequence[ChannelOrderItem] = ()
    currency: str | None = None
    total: Money | None = None
    buyer: Buyer | None = None
    shipping_address: Address | None = None
    #: False when the channel withheld buyer data (no PII role, e.g. Amazon AU in tests)
    pii_available: bool = True
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


# --- products and stock --------------------------------------------------------------------


@frozen
class ChannelListing:
    channel_sku: str
    fulfillment: Fulfillment = Fulfillment.MFN
    asin: str | None = None
    ean: str | None = None  #: EAN, or a UPC written as the 13-digit GTIN it is
    #: manufacturer part number, as the channel gives it (matched exactly, after the EAN)
    mpn: str | None = None
    listing_id: str | None = None
    title: str | None = None
    price: Money | None = None
    quantity: int | None = None
    handling_time_days: int | None = None
    status: str = "Active"  #: channel status; "Deleted" when gone from the channel


@frozen
class ChannelStock:
    """Channel-owned stock (FBA): imported, never pushed."""

    channel_sku: str
    quantity: int  #: fulfillable quantity
    asin: str | None = None
    details: Mapping[str, int] = field(default_factory=dict)


@frozen
class StockUpdate:
    channel_sku: str
    quantity: int
    handling_time_days: int | None = None
    #: set when the same push also carries a new price for this SKU
    price: Money | None = None


@frozen
class PriceUpdate:
    channel_sku: str
    price: Money
    marketplace: str | None = None


@frozen
class Submission:
    """Something sent to the channel that finishes later (a feed, a batch of patches)."""

    kind: str  #: "stock" or "prices"
    channel_id: str  #: the channel's id for it (feed id), or ours for synchronous batches
    channel_skus: Sequence[str] = ()
    submitted_at: datetime | None = None
    #: seconds until it is worth asking again; 0 when already complete
    poll_after: float = 0.0
    state: Mapping[str, Any] = field(default_factory=dict)
    #: per-SKU results already known at submission time (synchronous APIs)
    results: Sequence["ItemResult"] = ()


@frozen
class ItemResult:
    channel_sku: str
    accepted: bool
    message: str | None = None


@frozen
class SubmissionReport:
    done: bool
    results: Sequence[ItemResult] = ()
    poll_after: float = 30.0
    failed_reason: str | None = None  #: set when the whole submission failed


# --- shipments and fulfilment ----------------------------------------------------------------


@frozen
class ShipmentLine:
    channel_item_id: str
    quantity: int


@frozen
class Shipment:
    key: str  #: stable local id: confirming the same key twice must not ship twice
    channel_order_id: str
    marketplace: str
    carrier: str
    tracking_number: str
    shipped_at: datetime
    lines: Sequence[ShipmentLine] = ()
    ship_method: str | None = None


@frozen
class ShipmentConfirmation:
    key: str
    confirmed: bool
    already_confirmed: bool = False
    message: str | None = None


@frozen
class FulfillmentLine:
    channel_sku: str  #: the channel-fulfilled (FBA) SKU to ship
    line_id: str  #: our id for the line, unique within the order
    quantity: int


@frozen
class FulfillmentRequest:
    """An order the core asks the channel's fulfilment network (Amazon MCF) to ship."""

    fulfillment_order_id: str  #: our stable id: the channel refuses a second order with it
    marketplace: str
    ordered_at: datetime
    address: Address
    lines: Sequence[FulfillmentLine]
    displayable_order_id: str | None = None
    comment: str = "Thank you for your order."
    speed: str = "Standard"
    notification_emails: Sequence[str] = ()


@frozen
class FulfillmentRef:
    fulfillment_order_id: str  #: the seller's id for the MCF order
    marketplace: str


@frozen
class PackageTracking:
    carrier: str
    tracking_number: str
    shipped_at: datetime | None = None
    status: str | None = None
    delivered_at: datetime | None = None


@frozen
class TrackingInfo:
    fulfillment_order_id: str
    status: str
    packages: Sequence[PackageTracking] = ()


@frozen
class AccountInfo:
    """What ``check_credentials`` learnt: who the seller is and where they sell."""

    seller_id: str | None
    marketplaces: Sequence[str] = ()  #: marketplace codes the account can sell in
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Notice:
    """One channel notification, read by the channel's ``read_notification``: a trigger
    for ``job`` on every integration of the account, never data to apply.

    When it names one record an import can fetch alone (``record_id``, with the
    ``marketplace`` it belongs to), the core fetches just that record through the
    channel's ``fetch_record`` instead of running the whole import: one ``getOrder``
    rather than an account-wide search.
    """

    notification_id: str
    type: str  #: the channel's own name for it, e.g. ORDER_CHANGE
    job: str | None  #: the job kind that fetches what it announces (None: nothing to do)
    seller_id: str | None
    subject: str | None  #: the order, feed, report or fulfilment order it is about
    event_time: datetime | None
    #: the one record of import ``job`` to fetch with ``fetch_record`` (None: run the job)
    record_id: str | None = None
    #: the marketplace code the record belongs to, as integrations name it (a code no
    #: integration of the account has means: not imported here, nothing to fetch)
    marketplace: str | None = None
