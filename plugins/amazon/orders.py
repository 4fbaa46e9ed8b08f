"""import_orders: Orders API v2026-01-01 ``searchOrders`` by last update, one page per call.

Why these rules:

* ``lastUpdatedBefore`` must be at least two minutes in the past (Amazon refuses later
  ones), so the window ends at ``now - LAG`` and the watermark trails now by that much.
* Amazon publishes some changes late, so every run re-reads ``OVERLAP`` before the
  watermark; the core upserts by order id, so re-read orders are harmless.
* The first run reaches ``history_days`` back, never more than 30 days.
* A pagination token is valid 24 h and needs the same query, so the window travels in
  ``cursor.state`` with it; a refused token is ``CursorExpired`` and the core starts again
  from the committed watermark.

* One ``searchOrders`` call serves every marketplace of the account that is due
  (:class:`_Sweep`): Amazon allows one call per three minutes per account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import trio

from marketsync.core import clock
from marketsync.core.errors import CursorExpired
from marketsync.core.types import (
    Address,
    Buyer,
    ChannelOrder,
    ChannelOrderItem,
    Cursor,
    Fulfillment,
    Integration,
    Money,
    OrderStatus,
    Page,
    RejectedRecord,
)
from marketsync.plugins.amazon import marketplaces
from marketsync.plugins.amazon.client import AmazonRequestError, SpApi, csv_param

PATH = "/orders/2026-01-01/orders"
LAG = timedelta(minutes=2, seconds=30)  #: Amazon's 2 minutes plus slack for clock skew
OVERLAP = timedelta(minutes=10)
MAX_HISTORY_DAYS = 30
PAGE_SIZE = 100
#: A follower waits this long for the running search that covers it, then asks itself
#: (well inside the job timeout; a searchOrders token comes every three minutes).
FOLLOW_TIMEOUT = 240.0
#: A stashed answer older than this is dropped: the marketplace asks for itself.
STASH_MAX_AGE = timedelta(minutes=20)
#: A marketplace whose own import has not run for this long (stopped) is left out.
COMPANION_MAX_LAG = timedelta(hours=1)
_SWEEP = "amazon.order_sweep"
INCLUDED_DATA = ("BUYER", "RECIPIENT", "PROCEEDS", "CANCELLATION", "FULFILLMENT", "PACKAGES")
#: SP-API returns orders of the last two years (JP, AU, SG: since 2016); anything older
#: is a broken record, not history
EARLIEST = datetime(2016, 1, 1, tzinfo=clock.UTC)
FULFILLED_BY = {"FBA": ("AMAZON",), "MFN": ("MERCHANT",), "both": ()}

STATUS = {
    "PENDING_AVAILABILITY": OrderStatus.NEW,
    "PENDING": OrderStatus.NEW,
    "UNSHIPPED": OrderStatus.NEW,
    "PARTIALLY_SHIPPED": OrderStatus.PARTIALLY_SHIPPED,
    "SHIPPED": OrderStatus.SHIPPED,
    "CANCELLED": OrderStatus.CANCELED,
    # nothing of it will ship: its reservation must go, as for a cancel
    "UNFULFILLABLE": OrderStatus.CANCELED,
}


class Malformed(ValueError):
    """An order we cannot map; its message is the quarantine reason."""


def window(integration: Integration, cursor: Cursor, now: datetime) -> tuple[datetime, datetime]:
    """The ``lastUpdatedAfter``/``Before`` pair for a fresh query (no page token)."""
    before = now - LAG
    if cursor.since is None:
        days = int(integration.settings.get("history_days") or MAX_HISTORY_DAYS)
        after = now - timedelta(days=max(1, min(MAX_HISTORY_DAYS, days)))
    else:
        after = cursor.since - OVERLAP
    return after, before


@dataclass
class _Stash:
    """Orders a companion's search found for this marketplace, and the window they cover."""

    after: datetime
    before: datetime
    orders: list[Any]


@dataclass
class _Sweep:
    """Per account: lets one ``searchOrders`` call serve every marketplace that is due.

    ``searchOrders`` allows one call per three minutes per account, so twelve marketplaces
    asking for themselves every ten minutes would queue for ever. The integration that
    asks first (the leader) includes every marketplace of the account seen so far with the
    same order filter, starting at the earliest of their watermarks; what it finds for the
    others waits in ``stash`` for their own next call, which then costs no request.
    Everything here is in memory: after a restart each marketplace asks for itself once.
    """

    #: everything is keyed by integration alias: two integrations may share a marketplace
    watermarks: dict[str, datetime] = field(default_factory=dict)
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    marketplaces: dict[str, str] = field(default_factory=dict)  #: alias -> marketplace id
    stash: dict[str, _Stash] = field(default_factory=dict)
    #: what a leader's pages found for its companions so far, by leader
    pending: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    #: integrations a running search covers -> set when it is done
    running: dict[str, trio.Event] = field(default_factory=dict)


def _sweep(integration: Integration) -> _Sweep:
    sweep = integration.account_runtime.get(_SWEEP)
    if sweep is None:
        sweep = integration.account_runtime[_SWEEP] = _Sweep()
    return sweep


async def import_orders(integration: Integration, cursor: Cursor) -> Page[ChannelOrder]:
    api = SpApi(integration)
    me = integration.alias
    sweep = _sweep(integration)
    fulfilled_by = FULFILLED_BY.get(str(integration.settings.get("orders", "both")), ())
    sweep.filters[me] = fulfilled_by
    sweep.marketplaces[me] = api.marketplace_id
    params: dict[str, Any] = {
        "includedData": csv_param(INCLUDED_DATA),
        "maxResultsPerPage": PAGE_SIZE,
    }
    if fulfilled_by:
        params["fulfilledBy"] = csv_param(fulfilled_by)
    if cursor.token:
        try:
            after = datetime.fromisoformat(cursor.state["after"])
            before = datetime.fromisoformat(cursor.state["before"])
        except (KeyError, TypeError, ValueError):
            raise CursorExpired("the order cursor has a page token but not its window") from None
        companions = [c for c in cursor.state.get("companions") or () if c in sweep.marketplaces]
        params["paginationToken"] = cursor.token
    else:
        after, before = window(integration, cursor, clock.now())
        if after >= before:
            return Page(items=(), next=cursor, done=True)
        if me in sweep.running:  # a companion's search covers us: wait for its answer
            with trio.move_on_after(FOLLOW_TIMEOUT):
                await sweep.running[me].wait()
        page = _from_stash(sweep, me, after)
        if page is not None:
            return page
        now = clock.now()
        companions = sorted(c for c, mark in sweep.watermarks.items()
                            if c != me and sweep.filters.get(c) == fulfilled_by
                            and c not in sweep.running and now - mark <= COMPANION_MAX_LAG)
        after = min([after, *(sweep.watermarks[c] - OVERLAP for c in companions)])
        sweep.pending[me] = {c: [] for c in companions}
    wanted = sorted({api.marketplace_id, *(sweep.marketplaces[c] for c in companions)})
    params["marketplaceIds"] = csv_param(wanted)
    params["lastUpdatedAfter"] = clock.isoformat(after)
    params["lastUpdatedBefore"] = clock.isoformat(before)
    done = trio.Event()
    for companion in companions:
        sweep.running.setdefault(companion, done)
    try:
        try:
            body = await api.get_json(PATH, "searchOrders", params=params)
        except AmazonRequestError as exc:
            if cursor.token and exc.status == 400:
                raise CursorExpired(f"searchOrders refused the page token: {exc.detail}") from None
            raise
        own: list[Any] = []
        pending = sweep.pending.setdefault(me, {})
        for raw in body.get("orders") or ():
            where = ((raw.get("salesChannel") or {}) if isinstance(raw, dict) else {}).get(
                "marketplaceId")
            for companion in companions:
                if sweep.marketplaces[companion] == where:
                    pending.setdefault(companion, []).append(raw)
            if where == api.marketplace_id or where not in wanted:
                own.append(raw)  # an unknown marketplace is ours to reject, with its reason
        items, rejected = map_orders(own)
        next_token = (body.get("pagination") or {}).get("nextToken")
        if next_token:
            state = {"after": after.isoformat(), "before": before.isoformat(),
                     "companions": companions}
            return Page(items=items, rejected=rejected, done=False,
                        next=Cursor(since=cursor.since, token=next_token, state=state))
        for companion, found in sweep.pending.pop(me, {}).items():
            sweep.stash[companion] = _Stash(after=after, before=before, orders=found)
        sweep.watermarks[me] = before
        return Page(items=items, rejected=rejected, done=True, next=Cursor(since=before))
    finally:
        for companion in companions:
            if sweep.running.get(companion) is done:
                del sweep.running[companion]
        done.set()


async def fetch_order(integration: Integration, order_id: str) -> Page[ChannelOrder]:
    """One order again by id (v2026-01-01 ``getOrder``, same data sets as the search),
    mapped as the import maps it: for ``marketsync quarantine retry``."""
    api = SpApi(integration)
    try:
        body = await api.get_json(f"{PATH}/{order_id}", "getOrder",
                                  params={"includedData": csv_param(INCLUDED_DATA)})
    except AmazonRequestError as exc:
        if exc.status == 404:
            return Page(items=(), done=True)
        raise
    order = body.get("order") if isinstance(body, dict) else None
    items, rejected = map_orders([order] if order is not None else [])
    return Page(items=items, rejected=rejected, done=True)


def _from_stash(sweep: _Sweep, alias: str, after: datetime) -> Page[ChannelOrder] | None:
    """A companion's complete answer for us, if it covers our window and is recent."""
    stash = sweep.stash.pop(alias, None)
    if stash is None or stash.after > after:
        return None
    if clock.now() - stash.before > STASH_MAX_AGE:
        return None
    items, rejected = map_orders(stash.orders)
    sweep.watermarks[alias] = stash.before
    return Page(items=items, rejected=rejected, done=True, next=Cursor(since=stash.before))


def map_orders(orders: Any) -> tuple[list[ChannelOrder], list[RejectedRecord]]:
    """Map a page; a record that cannot be mapped, whatever the reason, is rejected alone.

    Catching every exception (not only :class:`Malformed`) matters: one order with a
    string where the model has an object would otherwise fail the whole page, the cursor
    would never move, and every later order of the account would wait behind it.
    """
    items: list[ChannelOrder] = []
    rejected: list[RejectedRecord] = []
    for raw in orders:
        order_id = raw.get("orderId") if isinstance(raw, dict) else None
        order_id = order_id if isinstance(order_id, str) and order_id else None
        try:
            items.append(map_order(raw))
        except Malformed as exc:
            rejected.append(RejectedRecord(record_id=order_id, reason=str(exc),
                                           raw=quarantine_view(raw)))
        except Exception as exc:  # noqa: BLE001 - this record only; the page goes on
            rejected.append(RejectedRecord.from_exception(order_id, exc, quarantine_view(raw)))
    return items, rejected


_KEEP = True
#: What of a rejected order is kept for a person to look at: ids, times, statuses, SKUs,
#: quantities and amounts. Anything else (buyer, recipient, addresses, titles) is kept as
#: its JSON type only, which is enough to see a shape fault and carries no data.
QUARANTINE_FIELDS: dict[str, Any] = {
    "orderId": _KEEP, "createdTime": _KEEP, "lastUpdatedTime": _KEEP, "programs": _KEEP,
    "salesChannel": {"marketplaceId": _KEEP, "channelName": _KEEP},
    "fulfillment": {"fulfillmentStatus": _KEEP, "fulfilledBy": _KEEP,
                    "fulfillmentServiceLevel": _KEEP, "shipByWindow": {"latestDateTime": _KEEP}},
    "proceeds": {"grandTotal": {"amount": _KEEP, "currencyCode": _KEEP}},
    "orderItems": [{
        "orderItemId": _KEEP, "quantityOrdered": _KEEP,
        "product": {"asin": _KEEP, "sellerSku": _KEEP,
                    "price": {"unitPrice": {"amount": _KEEP, "currencyCode": _KEEP}}},
        "fulfillment": {"quantityFulfilled": _KEEP, "quantityUnfulfilled": _KEEP},
    }],
    "packages": [{"packageReferenceId": _KEEP, "shipTime": _KEEP,
                  "packageStatus": {"status": _KEEP}}],
}
_MAX_KEPT_TEXT = 100
_MAX_KEPT_ITEMS = 50
_JSON_TYPES = ((bool, "boolean"), (int, "number"), (float, "number"), (str, "string"),
               (list, "array"), (dict, "object"))


def quarantine_view(raw: Any, spec: Any = QUARANTINE_FIELDS) -> Any:
    """``raw`` cut down to the allow-list ``spec`` (see :data:`QUARANTINE_FIELDS`)."""
    if spec is _KEEP:
        if isinstance(raw, str):
            return raw[:_MAX_KEPT_TEXT]
        if raw is None or isinstance(raw, (bool, int, float)):
            return raw
        if isinstance(raw, list) and all(isinstance(v, (str, int, float, bool)) for v in raw):
            return [v[:_MAX_KEPT_TEXT] if isinstance(v, str) else v for v in raw[:_MAX_KEPT_ITEMS]]
        return _json_type(raw)
    if isinstance(spec, list):
        if not isinstance(raw, list):
            return _json_type(raw)
        return [quarantine_view(v, spec[0]) for v in raw[:_MAX_KEPT_ITEMS]]
    if not isinstance(raw, dict):
        return _json_type(raw)
    return {key: quarantine_view(value, spec[key]) if key in spec else _json_type(value)
            for key, value in raw.items()}


def _json_type(value: Any) -> str:
    name = next((n for t, n in _JSON_TYPES if isinstance(value, t)), "null")
    return f"<{name}>"


def map_order(raw: Any) -> ChannelOrder:
    """One v2026-01-01 ``Order`` → ``ChannelOrder``; raises :class:`Malformed`."""
    if not isinstance(raw, dict):
        raise Malformed(f"order is a {type(raw).__name__}, not an object")
    order_id = _text(raw, "orderId")
    channel = raw.get("salesChannel") or {}
    try:
        marketplace = marketplaces.by_id(_text(channel, "marketplaceId", "salesChannel")).code
    except KeyError as exc:
        raise Malformed(str(exc).strip('"')) from None
    fulfillment = raw.get("fulfillment")
    if not isinstance(fulfillment, dict) or "fulfillmentStatus" not in fulfillment:
        raise Malformed("fulfillment.fulfillmentStatus is missing")
    channel_status = fulfillment["fulfillmentStatus"]
    if channel_status not in STATUS:
        raise Malformed(f"fulfillment.fulfillmentStatus {channel_status!r} is unknown")
    lines = raw.get("orderItems")
    if not isinstance(lines, list) or not lines:
        raise Malformed("orderItems is missing or empty")
    buyer = _buyer(raw.get("buyer"))
    address = _address((raw.get("recipient") or {}).get("deliveryAddress"))
    total = _money((raw.get("proceeds") or {}).get("grandTotal"), "proceeds.grandTotal")
    items = [_item(line, n) for n, line in enumerate(lines)]
    currency = total.currency if total else next(
        (i.unit_price.currency for i in items if i.unit_price), None)
    purchased_at = _time(raw.get("createdTime"), "createdTime")
    updated_at = _time(raw.get("lastUpdatedTime"), "lastUpdatedTime")
    if purchased_at < EARLIEST:
        raise Malformed(f"createdTime {raw['createdTime']} is before any order SP-API returns")
    if updated_at < purchased_at:
        raise Malformed("lastUpdatedTime is before createdTime")
    ship_times = [_time(p.get("shipTime"), "packages[].shipTime")
                  for p in raw.get("packages") or () if isinstance(p, dict) and p.get("shipTime")]
    return ChannelOrder(
        channel_order_id=order_id,
        marketplace=marketplace,
        status=STATUS[channel_status],
        channel_status=channel_status,
        fulfillment=Fulfillment.FBA if fulfillment.get("fulfilledBy") == "AMAZON"
        else Fulfillment.MFN,
        purchased_at=purchased_at,
        updated_at=updated_at,
        items=tuple(items),
        currency=currency,
        total=total,
        buyer=buyer,
        shipping_address=address,
        pii_available=buyer is not None or address is not None,
        shipped_at=max(ship_times) if ship_times else None,
        extra={
            "sales_channel": channel.get("channelName"),
            "programs": list(raw.get("programs") or ()),
            "service_level": fulfillment.get("fulfillmentServiceLevel"),
            "ship_by": ((fulfillment.get("shipByWindow") or {}).get("latestDateTime")),
        },
    )


def _item(line: Any, index: int) -> ChannelOrderItem:
    where = f"orderItems[{index}]"
    if not isinstance(line, dict):
        raise Malformed(f"{where} is not an object")
    product = line.get("product") or {}
    quantity = line.get("quantityOrdered")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
        raise Malformed(f"{where}.quantityOrdered {quantity!r} is not a count")
    shipped = (line.get("fulfillment") or {}).get("quantityFulfilled") or 0
    if not isinstance(shipped, int) or shipped < 0:
        raise Malformed(f"{where}.fulfillment.quantityFulfilled {shipped!r} is not a count")
    return ChannelOrderItem(
        channel_item_id=_text(line, "orderItemId", where),
        channel_sku=_text(product, "sellerSku", f"{where}.product"),
        quantity=quantity,
        quantity_shipped=shipped,
        asin=product.get("asin"),
        title=product.get("title"),
        unit_price=_money((product.get("price") or {}).get("unitPrice"),
                          f"{where}.product.price.unitPrice"),
        tax=_item_tax(line.get("proceeds"), f"{where}.proceeds"),
    )


def _item_tax(proceeds: Any, where: str) -> Money | None:
    """The item's tax: the ``TAX`` entry of its proceeds breakdown (absent where the price
    carries none, e.g. US sales tax that Amazon collects itself)."""
    if not isinstance(proceeds, dict):
        return None
    breakdowns = proceeds.get("breakdowns") or []
    if not isinstance(breakdowns, list):
        raise Malformed(f"{where}.breakdowns is not a list")
    for index, entry in enumerate(breakdowns):
        if isinstance(entry, dict) and entry.get("type") == "TAX":
            return _money(entry.get("subtotal"), f"{where}.breakdowns[{index}].subtotal")
    return None


def _buyer(raw: Any) -> Buyer | None:
    if not isinstance(raw, dict) or not (raw.get("buyerName") or raw.get("buyerEmail")):
        return None
    return Buyer(name=raw.get("buyerName"), email=raw.get("buyerEmail"))


def _address(raw: Any) -> Address | None:
    if not isinstance(raw, dict) or not raw:
        return None
    return Address(
        name=raw.get("name"), line1=raw.get("addressLine1"), line2=raw.get("addressLine2"),
        line3=raw.get("addressLine3"), city=raw.get("city"),
        district=raw.get("districtOrCounty"), state=raw.get("stateOrRegion"),
        postal_code=raw.get("postalCode"), country_code=raw.get("countryCode"),
        phone=raw.get("phone"),
    )


def _money(raw: Any, where: str) -> Money | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise Malformed(f"{where} is not a Money object")
    try:
        return Money(amount=Decimal(str(raw["amount"])), currency=str(raw["currencyCode"]))
    except (KeyError, InvalidOperation):
        raise Malformed(f"{where} needs a decimal amount and a currencyCode") from None


def _text(raw: Any, key: str, where: str = "order") -> str:
    value = raw.get(key) if isinstance(raw, dict) else None
    if not isinstance(value, str) or not value:
        raise Malformed(f"{where}.{key} is missing")
    return value


def _time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise Malformed(f"{where} is missing")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(f"{where} {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise Malformed(f"{where} {value!r} has no time zone")
    return moment.astimezone(clock.UTC)
