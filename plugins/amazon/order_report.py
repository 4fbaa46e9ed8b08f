"""The first order import of an account, read from Amazon's all-orders report.

Why: searchOrders gives 100 orders a call and one call per ~3 minutes once its burst of 20
is spent, so a busy shop's 30 days (60,000 orders) took 31 hours to arrive. One
GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL report carries them all in minutes.
It is the report REFERENCE.md §9 names for this: FBA and MFN orders, by last update (so
its end is a watermark the normal search can go on from), no restricted role needed.

What the report cannot carry is fetched through searchOrders: the report has no buyer
name, e-mail or street address, and open merchant-fulfilled orders need them to be
shipped. Everything else is stored from the report. Its lines have no order-item id
either, so they are stored with provisional ids (``core.types.PROVISIONAL_ITEM_ID``) that
the core replaces with the real ones when searchOrders returns the order later.

The stages, each page committed by the core together with ``cursor.state["backfill"]``,
so a crash resumes at the stage and offset it had reached:

``report``  createReport for every marketplace of the account, range from ``history_days``
            back to ``REPORT_LAG`` ago (Amazon's order reports lag up to 30 minutes);
            then getReport until DONE (an empty page: the core asks again in a minute).
``rows``    the document, ``CHUNK`` orders a page. It is downloaded once per process
            (getReportDocument allows one call a minute); after a restart it is fetched
            again by its id and the pages go on from the committed offset.
``open``    searchOrders for the range's open merchant orders (fulfilledBy=MERCHANT and
            the open fulfillmentStatuses), with their buyer and address.
then        the normal cursor: every marketplace's watermark at the range's end, from
            where the regular search re-reads (``orders.OVERLAP``) and goes on.

``marketsync sync ALIAS import_orders --since 30d`` runs the same stages for the window it
names (the core sets ``REREAD_FROM`` in the cursor for one call, see ``core/types.py``),
whatever the cursor holds: the account's watermarks are kept in the backfill's state
(``previous``) and given back at the end, each at the range's end or at its own mark if
that was earlier, so the normal search goes on where it would have and misses nothing.
Orders already stored are merged by the core: the report's provisional lines find the
stored lines by SKU, and the report's missing buyer data never replaces stored data.

A report Amazon ends CANCELLED or FATAL, or one not done after ``PATIENCE``, or a
document gone before it was read: the import falls back to the searchOrders path for the
whole window (slow, but complete), and says so in a WARNING.
Buyer columns of the report (ship-city, -state, -postal-code) are never stored or logged:
only ship-country is kept, as the searchOrders path keeps it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from marketsync.core import clock
from marketsync.core.types import (
    PROVISIONAL_ITEM_ID,
    REREAD_FROM,
    Address,
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
from marketsync.plugins.amazon import marketplaces, orders
from marketsync.plugins.amazon.client import AmazonRequestError, SpApi, csv_param
from marketsync.plugins.amazon.reports import BASE, PENDING, decode

REPORT_TYPE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
#: Amazon's order reports lag up to 30 minutes; the range ends before that, and the
#: normal search reads everything later
REPORT_LAG = timedelta(minutes=35)
#: how long a report may take before the import gives up on it and searches instead
PATIENCE = timedelta(hours=2)
#: orders per page: one transaction each in the core
CHUNK = 1000
STATE = "backfill"
#: set in the state of a search that replaces a failed backfill, so it is not tried again
FALLBACK = "backfill_fallback"
#: True: a fresh account's first import reads the report; False: searchOrders only (the
#: old path, kept to compare with in bench/backfill.py and the tests)
ENABLED = True
OPEN_STATUSES = ("PENDING_AVAILABILITY", "PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED")

#: the report's order-status (the v0 words) → the v2026 status the search path maps
REPORT_STATUS = {
    "PendingAvailability": "PENDING_AVAILABILITY", "Pending": "PENDING",
    "Unshipped": "UNSHIPPED", "PartiallyShipped": "PARTIALLY_SHIPPED", "Shipped": "SHIPPED",
    "Cancelled": "CANCELLED", "Canceled": "CANCELLED", "Unfulfillable": "UNFULFILLABLE",
    # seen in real files for FBA orders on their way (⚠ not in Amazon's documentation)
    "Shipping": "UNSHIPPED",
}
#: sales-channel → marketplace code; "Non-Amazon" rows are multi-channel fulfilment
#: orders of other shops, not Amazon orders
SALES_CHANNELS = {
    "Amazon.com": "US", "Amazon.ca": "CA", "Amazon.com.mx": "MX", "Amazon.com.br": "BR",
    "Amazon.co.uk": "UK", "Amazon.de": "DE", "Amazon.fr": "FR", "Amazon.it": "IT",
    "Amazon.es": "ES", "Amazon.nl": "NL", "Amazon.pl": "PL", "Amazon.se": "SE",
    "Amazon.com.be": "BE", "Amazon.ie": "IE", "Amazon.com.tr": "TR", "Amazon.ae": "AE",
    "Amazon.sa": "SA", "Amazon.eg": "EG", "Amazon.in": "IN", "Amazon.co.za": "ZA",
    "Amazon.co.jp": "JP", "Amazon.com.au": "AU", "Amazon.sg": "SG",
}
NOT_AMAZON = "Non-Amazon"
#: columns a quarantined row keeps; the others (buyer location, promotions) show their
#: presence only
KEPT_COLUMNS = frozenset({
    "amazon-order-id", "purchase-date", "last-updated-date", "order-status",
    "fulfillment-channel", "sales-channel", "ship-service-level", "sku", "asin", "item-status",
    "quantity", "currency", "item-price", "item-tax", "shipping-price", "ship-country"})

#: downloaded documents by id, as (order id, [(line number, line)]) groups; at most two
_DOCUMENTS: OrderedDict[str, list[tuple[str, list[tuple[int, str]]]]] = OrderedDict()
_HEADERS: dict[str, list[str]] = {}


def wanted(cursor: Cursor, members: Sequence[Integration] = ()) -> bool:
    """Whether this call belongs to a report backfill: one under way, or an account's very
    first import (no watermark at all) unless a member's ``order_backfill`` says
    ``search``. A marketplace added to an account later reaches back through
    searchOrders, as before."""
    if STATE in cursor.state or REREAD_FROM in cursor.state:
        return True
    if any(m.settings.get("order_backfill", "report") == "search" for m in members):
        return False
    return (ENABLED and cursor.since is None and not cursor.token
            and orders.WATERMARKS not in cursor.state and FALLBACK not in cursor.state)


async def import_orders(integration: Integration, cursor: Cursor,
                        integrations: Sequence[Integration] | None = None) -> Page[ChannelOrder]:
    members = list(integrations or (integration,))
    api = SpApi(integration)
    state = dict(cursor.state.get(STATE) or {})
    stage = state.get("stage")
    if stage is None:
        return await _request(api, members, cursor, _reread_from(cursor))
    if stage == "report":
        return await _follow(api, members, cursor, state)
    if stage == "rows":
        return await _rows(api, members, cursor, state)
    if stage == "open":
        return await _open(api, members, cursor, state)
    return await _fall_back(api, members, cursor, f"unknown stage {stage!r} in the cursor")


def _next(cursor: Cursor, state: dict[str, Any]) -> Cursor:
    return Cursor(since=cursor.since, state={STATE: state})


def _reread_from(cursor: Cursor) -> datetime | None:
    value = cursor.state.get(REREAD_FROM)
    if value is None:
        return None
    try:
        start = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"cursor state {REREAD_FROM}: {value!r} is not an ISO-8601 time") \
            from None
    if start.tzinfo is None:
        raise ValueError(f"cursor state {REREAD_FROM}: {value!r} has no time zone")
    return start


async def _request(api: SpApi, members: list[Integration], cursor: Cursor,
                   reread_from: datetime | None = None) -> Page[ChannelOrder]:
    now = clock.now()
    end = now - REPORT_LAG
    start = min(now - orders._history(m) for m in members)  # noqa: SLF001 - same module family
    if reread_from is not None:
        # never further back than Amazon keeps the report's orders (the core refuses more)
        start = max(reread_from, now - timedelta(days=orders.MAX_HISTORY_DAYS))
    if start >= end:
        start = end - timedelta(minutes=1)
    codes = sorted({m.marketplace for m in members})
    answer = await api.send_json("POST", f"{BASE}/reports", "createReport", expect=(202, 200),
                                 json={"reportType": REPORT_TYPE,
                                       "marketplaceIds": [marketplaces.MARKETPLACES[c].id
                                                          for c in codes],
                                       "dataStartTime": clock.isoformat(start),
                                       "dataEndTime": clock.isoformat(end)})
    state = {"stage": "report", "report_id": str(answer["reportId"]),
             "requested_at": now.isoformat(), "start": start.isoformat(),
             "end": end.isoformat(), "marketplaces": codes,
             "previous": dict(cursor.state.get(orders.WATERMARKS) or {})}
    api.log.info("account %s: order %s from report %s (%s to %s)", members[0].account,
                 "re-read" if reread_from is not None else "first import", state["report_id"],
                 clock.isoformat(start),
                 clock.isoformat(end))
    return Page(items=(), done=False, next=_next(cursor, state))


async def _follow(api: SpApi, members: list[Integration], cursor: Cursor,
                  state: dict[str, Any]) -> Page[ChannelOrder]:
    report_id = state["report_id"]
    try:
        report = await api.get_json(f"{BASE}/reports/{report_id}", "getReport")
    except AmazonRequestError as exc:
        if exc.status != 404:
            raise
        return await _fall_back(api, members, cursor, f"report {report_id} is gone")
    status = report.get("processingStatus")
    if status in PENDING:
        waited = clock.now() - datetime.fromisoformat(state["requested_at"])
        if waited <= PATIENCE:
            return Page(items=(), done=False, next=cursor)
        return await _fall_back(api, members, cursor,
                                f"report {report_id} still {status} after {waited}")
    if status != "DONE" or not report.get("reportDocumentId"):
        why = "has no data" if status == "CANCELLED" else "failed"
        return await _fall_back(api, members, cursor, f"report {report_id} ended {status} "
                                                      f"({why})")
    state.update(stage="rows", document_id=str(report["reportDocumentId"]), offset=0)
    return await _rows(api, members, cursor, state)


async def _rows(api: SpApi, members: list[Integration], cursor: Cursor,
                state: dict[str, Any]) -> Page[ChannelOrder]:
    document_id = state["document_id"]
    groups = _DOCUMENTS.get(document_id)
    if groups is None:
        try:
            document = await api.get_json(f"{BASE}/documents/{document_id}",
                                          "getReportDocument")
        except AmazonRequestError as exc:
            if exc.status != 404:
                raise
            return await _fall_back(api, members, cursor,
                                    f"report document {document_id} is gone")
        content = await api.download(document["url"], document.get("compressionAlgorithm"))
        groups = _remember(document_id, content)
    offset = int(state.get("offset") or 0)
    chunk = groups[offset:offset + CHUNK]
    header = _HEADERS[document_id]
    items, rejected = map_groups(header, chunk, state["marketplaces"])
    by_code = {m.marketplace: m for m in members}
    items = [o for o in items
             if o.marketplace not in by_code or orders._wanted(by_code[o.marketplace], o)]  # noqa: SLF001
    offset += len(chunk)
    if offset < len(groups):
        return Page(items=items, rejected=rejected, done=False,
                    next=_next(cursor, {**state, "offset": offset}))
    _DOCUMENTS.pop(document_id, None)
    _HEADERS.pop(document_id, None)
    api.log.info("account %s: report %s read (%d orders); open merchant orders next, "
                 "through searchOrders", members[0].account, state["report_id"], len(groups))
    following = {key: value for key, value in state.items()
                 if key not in ("document_id", "offset")}
    following["stage"] = "open"
    return Page(items=items, rejected=rejected, done=False, next=_next(cursor, following))


async def _open(api: SpApi, members: list[Integration], cursor: Cursor,
                state: dict[str, Any]) -> Page[ChannelOrder]:
    """The range's open merchant orders, with buyer and address, through searchOrders."""
    codes = state["marketplaces"]
    end = datetime.fromisoformat(state["end"])
    if not any(str(m.settings.get("orders", "both")) in ("MFN", "both") for m in members):
        return _finish(state, codes, end, [], [])
    params: dict[str, Any] = {
        "marketplaceIds": csv_param(sorted(marketplaces.MARKETPLACES[c].id for c in codes)),
        "fulfilledBy": "MERCHANT", "fulfillmentStatuses": csv_param(OPEN_STATUSES),
        "lastUpdatedAfter": clock.isoformat(datetime.fromisoformat(state["start"])),
        "lastUpdatedBefore": clock.isoformat(end),
        "includedData": csv_param(orders.INCLUDED_DATA), "maxResultsPerPage": orders.PAGE_SIZE,
    }
    if state.get("token"):
        params["paginationToken"] = state["token"]
    try:
        body = await api.get_json(orders.PATH, "searchOrders", params=params)
    except AmazonRequestError as exc:
        if not (state.get("token") and exc.status == 400):
            raise
        # the token expired (24 h): the open orders of the range once more from the start
        return Page(items=(), done=False, next=_next(cursor, {**state, "token": None}))
    items, rejected = orders.map_orders(body.get("orders") or ())
    by_code = {m.marketplace: m for m in members}
    items = [o for o in items
             if o.marketplace not in by_code or orders._wanted(by_code[o.marketplace], o)]  # noqa: SLF001
    token = (body.get("pagination") or {}).get("nextToken")
    if token:
        return Page(items=items, rejected=rejected, done=False,
                    next=_next(cursor, {**state, "token": token}))
    return _finish(state, codes, end, items, rejected)


def _finish(state: dict[str, Any], codes: list[str], end: datetime, items: list[ChannelOrder],
            rejected: list[RejectedRecord]) -> Page[ChannelOrder]:
    """The backfill's last page: from here the normal search goes on from the range's end
    (not done: it has the time since then to read). A re-read gives back the watermarks it
    found, none later than the range's end, so no marketplace skips a window."""
    marks = {code: mark for code, mark in (state.get("previous") or {}).items()}
    for code in codes:
        old = marks.get(code)
        if old is None or datetime.fromisoformat(old) > end:
            marks[code] = end.isoformat()
    since = min(datetime.fromisoformat(mark) for mark in marks.values())
    return Page(items=items, rejected=rejected, done=False,
                next=Cursor(since=since, state={orders.WATERMARKS: marks}))


async def _fall_back(api: SpApi, members: list[Integration], cursor: Cursor,
                     why: str) -> Page[ChannelOrder]:
    api.log.warning("account %s: %s; the first order import goes on through searchOrders "
                    "instead (about 3 minutes per 100 orders beyond the first 2,000)",
                    members[0].account, why)
    state = cursor.state.get(STATE) or {}
    if state.get("previous") or REREAD_FROM in cursor.state:
        # a re-read: the search reads its window again from its start (or the asked one)
        start = state.get("start") or cursor.state.get(REREAD_FROM)
        return await orders.import_orders(
            members[0], Cursor(since=datetime.fromisoformat(str(start)),
                               state={FALLBACK: why}), members)
    return await orders.import_orders(members[0], Cursor(state={FALLBACK: why}), members)


# --- the document ----------------------------------------------------------------------------


def _remember(document_id: str, content: bytes) -> list[tuple[str, list[tuple[int, str]]]]:
    header, groups = group_lines(decode(content))
    while len(_DOCUMENTS) >= 2:
        old, _ = _DOCUMENTS.popitem(last=False)
        _HEADERS.pop(old, None)
    _DOCUMENTS[document_id] = groups
    _HEADERS[document_id] = header
    return groups


def group_lines(text: str) -> tuple[list[str], list[tuple[str, list[tuple[int, str]]]]]:
    """The header and the lines of each order (one line per item), in the file's order.

    Lines are kept as text and split only when their page is mapped: a 60,000-order file
    held as dicts would cost ten times the memory."""
    lines = text.splitlines()
    if not lines:
        return [], []
    header = lines[0].split("\t")
    try:
        column = header.index("amazon-order-id")
    except ValueError:
        column = None
    groups: dict[str, list[tuple[int, str]]] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        key = fields[column].strip() if column is not None and column < len(fields) else ""
        groups.setdefault(key or f"(line {number})", []).append((number, line))
    return header, list(groups.items())


def map_groups(header: list[str], groups: Sequence[tuple[str, list[tuple[int, str]]]],
               asked: Sequence[str]) -> tuple[list[ChannelOrder], list[RejectedRecord]]:
    """Map a page of orders; one that cannot be mapped is rejected alone, whatever the
    reason (see ``orders.map_orders``). Open merchant orders are left out: the ``open``
    stage reads them with their buyer and address."""
    items: list[ChannelOrder] = []
    rejected: list[RejectedRecord] = []
    for order_id, lines in groups:
        rows = [(number, dict(zip(header, line.split("\t"))), len(line.split("\t")))
                for number, line in lines]
        record_id = order_id if not order_id.startswith("(line") else None
        try:
            order = map_report_order(header, rows, asked)
        except orders.Malformed as exc:
            rejected.append(RejectedRecord(record_id=record_id, reason=str(exc),
                                           raw=quarantine_view(rows)))
            continue
        except Exception as exc:  # noqa: BLE001 - this order only; the page goes on
            rejected.append(RejectedRecord.from_exception(record_id, exc, quarantine_view(rows)))
            continue
        if order is not None:
            items.append(order)
    return items, rejected


def quarantine_view(rows: list[tuple[int, dict[str, str], int]]) -> dict[str, Any]:
    """What a person needs to see a bad order's fault, without the buyer's location."""
    return {"lines": [
        {"line": number, "fields": count,
         **{key: (value[:100] if key in KEPT_COLUMNS else "<string>" if value else "")
            for key, value in row.items() if isinstance(key, str)}}
        for number, row, count in rows[:50]]}


def map_report_order(header: list[str], rows: list[tuple[int, dict[str, str], int]],
                     asked: Sequence[str]) -> ChannelOrder | None:
    """One order's lines → ``ChannelOrder`` as the search path would map it; None for an
    order this stage leaves out (open and merchant-fulfilled, or not an Amazon order)."""
    first_line, first, _ = rows[0]
    for number, _, count in rows:
        if count != len(header):
            raise orders.Malformed(f"line {number} has {count} fields, the header "
                                   f"{len(header)}")
    order_id = _field(first, "amazon-order-id", first_line)
    channel = first.get("sales-channel", "").strip()
    if channel == NOT_AMAZON:
        return None
    code = SALES_CHANNELS.get(channel) or (asked[0] if len(asked) == 1 else None)
    if code is None:
        raise orders.Malformed(f"line {first_line}: sales-channel {channel!r} is no "
                               f"marketplace of the report")
    word = first.get("order-status", "").strip()
    if word not in REPORT_STATUS:
        raise orders.Malformed(f"line {first_line}: order-status {word!r} is unknown")
    channel_status = REPORT_STATUS[word]
    status = orders.STATUS[channel_status]
    by = first.get("fulfillment-channel", "").strip()
    if by not in ("Amazon", "Merchant"):
        raise orders.Malformed(f"line {first_line}: fulfillment-channel {by!r} is unknown")
    fulfillment = Fulfillment.FBA if by == "Amazon" else Fulfillment.MFN
    if fulfillment is Fulfillment.MFN and status in (OrderStatus.NEW,
                                                     OrderStatus.PARTIALLY_SHIPPED):
        return None
    purchased_at = orders._time(first.get("purchase-date") or None,  # noqa: SLF001
                                f"line {first_line}: purchase-date")
    updated_at = orders._time(first.get("last-updated-date") or None,  # noqa: SLF001
                              f"line {first_line}: last-updated-date")
    if purchased_at < orders.EARLIEST:
        raise orders.Malformed(f"line {first_line}: purchase-date {first['purchase-date']} is "
                               "before any order Amazon reports")
    if updated_at < purchased_at:
        raise orders.Malformed(f"line {first_line}: last-updated-date is before purchase-date")
    currency = first.get("currency", "").strip() or None
    items, total, repeats = [], None, {}
    for number, row, _ in rows:
        sku = _field(row, "sku", number)
        repeats[sku] = repeats.get(sku, 0) + 1
        quantity = _count(row.get("quantity", ""), f"line {number}: quantity")
        price = _amount(row, "item-price", number)
        if price is not None and currency is None:
            raise orders.Malformed(f"line {number}: item-price without a currency")
        line_total = [price, _amount(row, "shipping-price", number),
                      _amount(row, "gift-wrap-price", number)]
        discounts = [_amount(row, "item-promotion-discount", number),
                     _amount(row, "ship-promotion-discount", number)]
        if price is not None:
            total = (total or Decimal("0")) + sum(v for v in line_total if v is not None) \
                - sum(abs(v) for v in discounts if v is not None)
        tax = _amount(row, "item-tax", number)
        shipped = status is OrderStatus.SHIPPED or row.get("item-status", "").strip() == "Shipped"
        suffix = "" if repeats[sku] == 1 else f"#{repeats[sku]}"
        items.append(ChannelOrderItem(
            channel_item_id=f"{PROVISIONAL_ITEM_ID}{sku}{suffix}", channel_sku=sku,
            quantity=quantity, quantity_shipped=quantity if shipped else 0,
            asin=row.get("asin", "").strip() or None,
            title=row.get("product-name", "").strip() or None,
            unit_price=Money(amount=(price / quantity).quantize(Decimal("0.01")),
                             currency=currency) if price is not None and quantity else None,
            tax=Money(amount=tax, currency=currency) if tax is not None and currency else None,
        ))
    country = first.get("ship-country", "").strip()
    return ChannelOrder(
        channel_order_id=order_id, marketplace=code, status=status,
        channel_status=channel_status, fulfillment=fulfillment,
        purchased_at=purchased_at, updated_at=updated_at, items=tuple(items),
        currency=currency,
        total=Money(amount=total, currency=currency) if total is not None and currency else None,
        shipping_address=Address(country_code=country) if country else None,
        pii_available=False,  # the report names no buyer and no street
        extra={"sales_channel": "AMAZON", "service_level": first.get("ship-service-level"),
               "source": REPORT_TYPE},
    )


def _field(row: dict[str, str], column: str, line: int) -> str:
    value = (row.get(column) or "").strip()
    if not value:
        raise orders.Malformed(f"line {line}: {column} is missing")
    return value


def _count(text: str, where: str) -> int:
    text = (text or "").strip()
    if not text.isdigit():
        raise orders.Malformed(f"{where} {text[:20]!r} is not a count")
    return int(text)


def _amount(row: dict[str, str], column: str, line: int) -> Decimal | None:
    text = (row.get(column) or "").strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise orders.Malformed(f"line {line}: {column} {text[:20]!r} is not an amount") from None
    if not value.is_finite():
        raise orders.Malformed(f"line {line}: {column} {text[:20]!r} is not an amount")
    return value

