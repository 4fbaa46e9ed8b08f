"""import_orders: Orders API v2026-01-01 ``searchOrders`` by last update, one page per call.

Why these rules:

* ``lastUpdatedBefore`` must be at least two minutes in the past (Amazon refuses later
  ones), so the window ends at ``now - LAG`` and the watermark trails now by that much.
* Amazon publishes some changes late, so every run re-reads ``OVERLAP`` before the
  watermark; the core upserts by order id, so re-read orders are harmless.
* The first run of a marketplace reaches ``history_days`` back, never more than 30 days.
* A pagination token is valid 24 h and needs the same query, so the window travels in
  ``cursor.state`` with it; a refused token is ``CursorExpired`` and the core starts again
  from the committed watermarks.
* The job is account-scoped (``manifest.py``): Amazon allows one ``searchOrders`` call per
  three minutes per seller account and one call names every marketplace, so the core
  calls this hook once per account with its LIVE integrations and routes each order to
  the integration of its marketplace. Nothing is shared between calls but the cursor.
* The cursor keeps a watermark per marketplace (``state["watermarks"]``): an integration
  that was paused, or added later, starts the window where it stands, so no window is
  lost; one query then covers every marketplace from the earliest watermark (re-reading
  the others' overlap is harmless, and cheaper than a call of its own per marketplace).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

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
WATERMARKS = "watermarks"  #: the core's convention for per-marketplace progress
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
    """The ``lastUpdatedAfter``/``Before`` pair of one marketplace for a fresh query."""
    return _start(integration, _mark(integration, cursor), now), now - LAG


def _history(integration: Integration) -> timedelta:
    days = int(integration.settings.get("history_days") or MAX_HISTORY_DAYS)
    return timedelta(days=max(1, min(MAX_HISTORY_DAYS, days)))


def _mark(integration: Integration, cursor: Cursor) -> datetime | None:
    """Where the integration's marketplace stands: its own watermark in the account's
    cursor, or ``cursor.since`` for a cursor of the per-integration kind (no watermarks)."""
    if WATERMARKS not in cursor.state:
        return cursor.since
    mark = (cursor.state.get(WATERMARKS) or {}).get(integration.marketplace)
    try:
        return datetime.fromisoformat(mark) if mark else None
    except (TypeError, ValueError):
        return None  # a damaged entry: read the marketplace's history again (upserts)


def _start(integration: Integration, mark: datetime | None, now: datetime) -> datetime:
    return now - _history(integration) if mark is None else mark - OVERLAP


def _filter(members: Sequence[Integration]) -> tuple[str, ...]:
    """One ``fulfilledBy`` for the call: the members' own when they agree, else none
    (each member then keeps only what it asked for, see ``_wanted``)."""
    wanted = {FULFILLED_BY.get(str(m.settings.get("orders", "both")), ()) for m in members}
    return wanted.pop() if len(wanted) == 1 else ()


def _wanted(member: Integration, order: ChannelOrder) -> bool:
    choice = str(member.settings.get("orders", "both"))
    if choice == "FBA":
        return order.fulfillment is Fulfillment.FBA
    if choice == "MFN":
        return order.fulfillment is Fulfillment.MFN
    return True


async def import_orders(integration: Integration, cursor: Cursor,
                        integrations: Sequence[Integration] | None = None) -> Page[ChannelOrder]:
    """One page of the account's orders, for every marketplace in ``integrations``."""
    members = list(integrations or (integration,))
    api = SpApi(integration)
    by_code = {m.marketplace: m for m in members}
    marks = dict(cursor.state.get(WATERMARKS) or {})
    if WATERMARKS not in cursor.state and cursor.since is not None:
        marks = {code: cursor.since.isoformat() for code in by_code}
    params: dict[str, Any] = {
        "includedData": csv_param(INCLUDED_DATA),
        "maxResultsPerPage": PAGE_SIZE,
    }
    if cursor.token:
        try:
            after = datetime.fromisoformat(cursor.state["after"])
            before = datetime.fromisoformat(cursor.state["before"])
        except (KeyError, TypeError, ValueError):
            raise CursorExpired("the order cursor has a page token but not its window") from None
        asked = list(cursor.state.get("marketplaces") or sorted(by_code))
        served = list(cursor.state.get("served", asked))
        fulfilled_by = tuple(cursor.state.get("fulfilled_by") or ())
        params["paginationToken"] = cursor.token
    else:
        now = clock.now()
        before = now - LAG
        after = min(_start(m, _mark(m, cursor), now) for m in members)
        if after >= before:
            return Page(items=(), next=cursor, done=True)
        asked = served = sorted(by_code)
        fulfilled_by = _filter(members)
    if fulfilled_by:
        params["fulfilledBy"] = csv_param(fulfilled_by)
    params["marketplaceIds"] = csv_param(sorted(
        marketplaces.MARKETPLACES[code].id for code in asked))
    params["lastUpdatedAfter"] = clock.isoformat(after)
    params["lastUpdatedBefore"] = clock.isoformat(before)
    try:
        body = await api.get_json(PATH, "searchOrders", params=params)
    except AmazonRequestError as exc:
        if cursor.token and exc.status == 400:
            raise CursorExpired(f"searchOrders refused the page token: {exc.detail}") from None
        raise
    # a marketplace asked for whose integration is missing for one of the pages (paused
    # meanwhile) has a gap in this window, even if it is back for the last page: its
    # watermark stays, and a later query reads its orders again from there
    served = [code for code in served if code in by_code]
    absent = {marketplaces.MARKETPLACES[code].id for code in asked if code not in served}
    raws = [raw for raw in body.get("orders") or ()
            if _marketplace_id(raw) not in absent]
    mapped, rejected = map_orders(raws)
    items = [order for order in mapped
             if order.marketplace not in by_code or _wanted(by_code[order.marketplace], order)]
    next_token = (body.get("pagination") or {}).get("nextToken")
    if next_token:
        state = {WATERMARKS: marks, "after": after.isoformat(), "before": before.isoformat(),
                 "marketplaces": asked, "served": served, "fulfilled_by": list(fulfilled_by)}
        return Page(items=items, rejected=rejected, done=False,
                    next=Cursor(since=cursor.since, token=next_token, state=state))
    for code in served:  # every page of the window reached them
        marks[code] = before.isoformat()
    since = min(datetime.fromisoformat(mark) for mark in marks.values()) if marks else before
    return Page(items=items, rejected=rejected, done=True,
                next=Cursor(since=since, state={WATERMARKS: marks}))


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


def _marketplace_id(raw: Any) -> Any:
    return ((raw.get("salesChannel") or {}) if isinstance(raw, dict) else {}).get(
        "marketplaceId")


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
