"""import_orders: Fulfillment ``getOrders`` by last modification, one page per call.

Why these rules:

* eBay returns every order of the seller whatever the site, so the job is account-scoped
  (``manifest.JOBS``): one ``getOrders`` serves every eBay integration of the account, and
  the core routes each order to the integration of its site (``listingMarketplaceId``).
  Per site this was one call per site per minute against one daily quota.
* An order of a site none of ``integrations`` imports (a site the seller has not
  configured, or whose integration is paused) is **skipped, not quarantined**: it is not
  ours to import, and a paused integration's orders are read again from its own
  watermark when it is back. Each window logs how many it skipped per site, so a seller
  who sells on a site they did not configure sees it in the log.
* Progress is per site, in ``cursor.state["watermarks"]`` (code → ISO time): a window
  starts at the earliest watermark of the sites asked for (less ``OVERLAP``), and only
  the sites served by every page of it move on.
* The window ``lastmodifieddate:[from..to]`` is pinned in ``cursor.state`` while paging
  (the offset is the cursor's ``token``, so a cursor without one is a fresh query, as the
  core expects after ``CursorExpired``); every new window re-reads ``OVERLAP`` before
  the watermark (late publication), and the core's upsert by order id dedupes.
* An order modified while we page leaves the window (its new date is after ``to``) and the
  later orders shift one place towards the start: ``total`` shrinks. The next page then
  starts that many places earlier, so no order is skipped (re-read ones are harmless).
* A record that breaks the contract is rejected with its reason and quarantined by the
  core; the page goes on.
"""

from __future__ import annotations

from collections import Counter
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
from marketsync.plugins.ebay.client import EbayApi, EbayRequestError
from marketsync.plugins.ebay.manifest import BY_ID, MARKETPLACES

PATH = "/sell/fulfillment/v1/order"
#: The window ends this far before now. eBay may index a change a little late, but every
#: run re-reads OVERLAP anyway, so the lag only keeps the watermark off the moving edge;
#: each second of it is a second of a sale's way to the other channels (P1: 90 s).
LAG = timedelta(seconds=5)
OVERLAP = timedelta(minutes=10)
MAX_HISTORY_DAYS = 90  #: getOrders reaches two years back; 90 days is plenty for a start
PAGE_SIZE = 200  #: getOrders' maximum

FULFILMENT = {"NOT_STARTED": OrderStatus.NEW, "IN_PROGRESS": OrderStatus.PARTIALLY_SHIPPED,
              "FULFILLED": OrderStatus.SHIPPED}


class Malformed(ValueError):
    """An order we cannot map; its message is the quarantine reason."""


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(clock.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise Malformed(f"{what} missing or not a string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(f"{what} is not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        raise Malformed(f"{what} has no time zone: {value!r}")
    return moment


WATERMARKS = "watermarks"  #: the core's name for per-marketplace progress (hookspecs)


def _start(member: Integration, marks: dict, now: datetime) -> datetime:
    """Where a site's next window starts: its watermark less the overlap, or its history."""
    mark = marks.get(member.marketplace)
    if mark is not None:
        return datetime.fromisoformat(mark) - OVERLAP
    days = int(member.settings.get("history_days") or 30)
    return now - timedelta(days=max(1, min(MAX_HISTORY_DAYS, days)))


async def import_orders(integration: Integration, cursor: Cursor,
                        integrations: Sequence[Integration] | None = None) -> Page[ChannelOrder]:
    """One page of the account's orders, for every site in ``integrations``."""
    members = list(integrations or (integration,))
    present = {m.marketplace for m in members}
    now = clock.now()
    state = dict(cursor.state)
    marks = dict(state.get(WATERMARKS) or {})
    if WATERMARKS not in state and cursor.since is not None:
        marks = {code: cursor.since.isoformat() for code in present}
    if cursor.token is not None and "to" in state:
        since, until = datetime.fromisoformat(state["from"]), datetime.fromisoformat(state["to"])
        offset, total = int(cursor.token), state.get("total")
        asked = list(state.get("asked") or sorted(present))
        served = [code for code in state.get("served", asked) if code in present]
    else:
        until = now - LAG
        since = min(_start(m, marks, now) for m in members)
        offset, total = 0, None
        asked = served = sorted(present)
    api = EbayApi(integration)
    for _ in range(3):
        params = {"filter": f"lastmodifieddate:[{_iso(since)}..{_iso(until)}]",
                  "limit": str(PAGE_SIZE), "offset": str(offset)}
        try:
            body = await api.get_json(PATH, "getOrders", params=params)
        except EbayRequestError as exc:
            if exc.status == 400 and offset:
                raise CursorExpired(f"getOrders refused the page at offset {offset}: "
                                    f"{exc.detail}") from None
            raise
        new_total = body.get("total") if isinstance(body.get("total"), int) else None
        if total is None or new_total is None or new_total >= total or not offset:
            break
        # orders left the window since the last page: step back so nothing is skipped
        offset, total = max(0, offset - (total - new_total)), new_total
    wanted = {MARKETPLACES[code].id: code for code in served if code in MARKETPLACES}
    items: list[ChannelOrder] = []
    rejected: list[RejectedRecord] = []
    skipped: Counter = Counter()
    raw_orders = body.get("orders") or []
    for raw in raw_orders:
        order_id = raw.get("orderId") if isinstance(raw, dict) else None
        try:
            if not isinstance(raw, dict):
                raise Malformed("the order is not an object")
            site = _marketplace_of(raw)
            if site not in wanted:
                skipped[str(site)] += 1
                continue
            items.append(map_order(raw))
        except Malformed as exc:
            rejected.append(RejectedRecord(record_id=str(order_id) if order_id else None,
                                           reason=f"eBay order: {exc}", raw=_redacted(raw)))
    skipped_before = Counter(state.get("skipped") or {})
    skipped_before.update(skipped)
    next_offset = offset + len(raw_orders)
    if body.get("next") and raw_orders and (new_total is None or next_offset < new_total):
        return Page(items=items, rejected=rejected, done=False, next=Cursor(
            since=cursor.since, token=str(next_offset),
            state={WATERMARKS: marks, "from": since.isoformat(), "to": until.isoformat(),
                   "total": new_total, "asked": asked, "served": served,
                   "skipped": dict(skipped_before)}))
    if skipped_before:
        integration.log.info(
            "eBay account %s: %d order(s) of sites no LIVE integration imports were skipped "
            "in this window (%s)", integration.account, sum(skipped_before.values()),
            ", ".join(f"{site} {n}" for site, n in sorted(skipped_before.items())))
    for code in served:  # every page of the window reached them
        marks[code] = until.isoformat()
    low = min(datetime.fromisoformat(mark) for mark in marks.values()) if marks else until
    return Page(items=items, rejected=rejected, done=True,
                next=Cursor(since=low, state={WATERMARKS: marks}))


def _marketplace_of(raw: dict) -> str | None:
    lines = raw.get("lineItems")
    if not isinstance(lines, list) or not lines:
        raise Malformed("lineItems missing or empty")
    first = lines[0] if isinstance(lines[0], dict) else {}
    return first.get("listingMarketplaceId") or first.get("purchaseMarketplaceId")


def _money(amount: Any, what: str) -> Money | None:
    if amount is None:
        return None
    if not isinstance(amount, dict):
        raise Malformed(f"{what} is not an Amount")
    try:
        return Money(amount=Decimal(str(amount["value"])), currency=str(amount["currency"]))
    except (KeyError, InvalidOperation):
        raise Malformed(f"{what} is not an Amount: {amount!r}") from None


def map_order(raw: dict) -> ChannelOrder:
    """One eBay ``Order`` → ``ChannelOrder``; ``Malformed`` says what is wrong."""
    order_id = raw.get("orderId")
    if not isinstance(order_id, str) or not order_id:
        raise Malformed("orderId missing")
    purchased = _time(raw.get("creationDate"), "creationDate")
    updated = _time(raw.get("lastModifiedDate"), "lastModifiedDate")
    fulfilment = raw.get("orderFulfillmentStatus")
    if fulfilment not in FULFILMENT:
        raise Malformed(f"orderFulfillmentStatus {fulfilment!r} is not one of "
                        f"{', '.join(FULFILMENT)}")
    cancel = (raw.get("cancelStatus") or {}).get("cancelState", "NONE_REQUESTED")
    status = OrderStatus.CANCELED if cancel == "CANCELED" else FULFILMENT[fulfilment]
    market = BY_ID.get(_marketplace_of(raw) or "")
    if market is None:
        raise Malformed(f"listingMarketplaceId {_marketplace_of(raw)!r} is not an eBay marketplace")
    items = []
    for index, line in enumerate(raw["lineItems"]):
        if not isinstance(line, dict):
            raise Malformed(f"lineItems[{index}] is not an object")
        quantity = line.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise Malformed(f"lineItems[{index}].quantity is not a positive integer: {quantity!r}")
        sku, line_id = line.get("sku"), line.get("lineItemId")
        if not isinstance(line_id, str) or not line_id:
            raise Malformed(f"lineItems[{index}].lineItemId missing")
        if not isinstance(sku, str) or not sku:
            raise Malformed(f"lineItems[{index}] has no SKU (a listing not made through the "
                            f"Inventory API cannot be matched to a product)")
        cost = _money(line.get("lineItemCost"), f"lineItems[{index}].lineItemCost")
        shipped = quantity if line.get("lineItemFulfillmentStatus") == "FULFILLED" else 0
        items.append(ChannelOrderItem(
            channel_item_id=line_id, channel_sku=sku, quantity=quantity,
            quantity_shipped=shipped, title=line.get("title"),
            unit_price=Money(amount=cost.amount / quantity, currency=cost.currency) if cost else None))
    total = _money((raw.get("pricingSummary") or {}).get("total"), "pricingSummary.total")
    buyer, address, pii = _buyer(raw)
    return ChannelOrder(
        channel_order_id=order_id, marketplace=market.code, status=status,
        channel_status=f"{fulfilment}/{cancel}", fulfillment=Fulfillment.MFN,
        purchased_at=purchased, updated_at=updated, items=tuple(items),
        currency=total.currency if total else market.currency, total=total,
        buyer=buyer, shipping_address=address, pii_available=pii,
        extra={"sales_record": raw.get("salesRecordReference")})


def _buyer(raw: dict) -> tuple[Buyer | None, Address | None, bool]:
    instructions = raw.get("fulfillmentStartInstructions") or []
    ship_to = None
    for entry in instructions:
        if isinstance(entry, dict) and isinstance(entry.get("shippingStep"), dict):
            ship_to = entry["shippingStep"].get("shipTo")
            break
    if not isinstance(ship_to, dict):
        return None, None, False
    where = ship_to.get("contactAddress") or {}
    phone = (ship_to.get("primaryPhone") or {}).get("phoneNumber")
    address = Address(name=ship_to.get("fullName"), line1=where.get("addressLine1"),
                      line2=where.get("addressLine2"), city=where.get("city"),
                      district=where.get("county"), state=where.get("stateOrProvince"),
                      postal_code=where.get("postalCode"), country_code=where.get("countryCode"),
                      phone=phone)
    buyer = Buyer(name=ship_to.get("fullName"), email=ship_to.get("email"), phone=phone)
    return buyer, address, True


def _redacted(raw: Any) -> Any:
    """What is kept in quarantine: the order without its buyer and address."""
    if not isinstance(raw, dict):
        return None
    return {k: v for k, v in raw.items() if k not in ("buyer", "fulfillmentStartInstructions")}
