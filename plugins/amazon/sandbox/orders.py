"""Orders API v2026-01-01 (reads) and v0 (confirmShipment, deprecated reads).

Answers are drawn from the world's order timelines cut at ``now - lag`` for each order,
so a change shows only a minute or two after it happened, as on Amazon; a daemon that
trusts "now" as its cursor loses orders here just as it would in production. Parameter
rules (exactly one of createdAfter/lastUpdatedAfter, before-times ≥ 2 min in the past,
unchanged filters across pages) are the models' and answer 400 ``InvalidInput``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from marketsync.core.clock import isoformat

from .gateway import Call, error_response, json_response, sp_api
from .scenario import SimOrder
from .sellers import BY_ID

STATUSES = ["PENDING_AVAILABILITY", "PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED", "CANCELLED", "UNFULFILLABLE"]
FULFILLED_BY = ["MERCHANT", "AMAZON"]
DATASETS = ["BUYER", "RECIPIENT", "PROCEEDS", "EXPENSE", "PROMOTION", "CANCELLATION", "FULFILLMENT", "PACKAGES", "TAX", "PAYMENT", "FULFILLMENT_ORDERS"]
V0_STATUS = {"PENDING_AVAILABILITY": "PendingAvailability", "PENDING": "Pending", "UNSHIPPED": "Unshipped",
             "PARTIALLY_SHIPPED": "PartiallyShipped", "SHIPPED": "Shipped", "CANCELLED": "Canceled",
             "UNFULFILLABLE": "Unfulfillable"}
MIN_BEFORE_AGE = timedelta(minutes=2)
PAGE_TOKEN_LIFETIME = timedelta(hours=24)
ANCIENT = "1995-06-15T09:30:00Z"


class BadInput(Exception):
    """A parameter the model's rules refuse; becomes a 400 InvalidInput."""


def _invalid(message: str) -> Response:
    return error_response(400, "InvalidInput", message)


def _list(request: Request, name: str, allowed: list[str] | None = None) -> list[str]:
    """Swagger arrays are csv by default; repeated parameters are accepted too."""
    values = [v for raw in request.query_params.getlist(name) for v in raw.split(",") if v]
    for value in values:
        if allowed is not None and value not in allowed:
            raise BadInput(f"{name}: {value!r} is not one of {allowed}")
    return values


def _date(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{name}: {raw!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


def _window(call: Call, after: tuple[str, datetime | None], before: tuple[str, datetime | None]) -> datetime:
    """The effective before-time: given or now − 2 min; checked against after and now."""
    latest = call.now - MIN_BEFORE_AGE
    name, value = before
    if value is None:
        return latest
    if after[1] is not None and value < after[1]:
        raise BadInput(f"{name} must be equal to or after {after[0]}")
    if value > latest:
        raise BadInput(f"{name} must be at least two minutes before the time of the request")
    return value


def _time_filter(call: Call, request: Request, v0: bool) -> tuple[str, datetime, datetime]:
    names = ("CreatedAfter", "CreatedBefore", "LastUpdatedAfter", "LastUpdatedBefore") if v0 else (
        "createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore")
    ca, cb, la, lb = (_date(request, n) for n in names)
    if (ca is None) == (la is None):
        raise BadInput(f"Exactly one of {names[0]} and {names[2]} must be provided")
    if ca is not None and (la is not None or lb is not None):
        raise BadInput(f"{names[0]} cannot be combined with {names[2]} or {names[3]}")
    if la is not None and cb is not None:
        raise BadInput(f"{names[2]} cannot be combined with {names[1]}")
    if ca is not None:
        return "created", ca, _window(call, (names[0], ca), (names[1], cb))
    return "lastUpdated", la, _window(call, (names[2], la), (names[3], lb))  # type: ignore[arg-type]


def _max_results(request: Request, name: str) -> int:
    raw = request.query_params.get(name, "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise BadInput(f"{name}: {raw!r} must be an integer between 1 and 100")
    return int(raw)


def _marketplaces(call: Call, request: Request, name: str) -> list[str]:
    ids = _list(request, name)
    if len(ids) > 50:
        raise BadInput(f"{name}: at most 50 marketplace ids")
    for mid in ids:
        if mid not in call.account.marketplace_ids:
            raise BadInput(f"{name}: {mid!r} is not a marketplace this seller participates in")
    return ids


def _select(call: Call, *, kind: str, after: datetime, before: datetime, marketplaces: list[str],
            statuses: list[str], fulfilled_by: list[str]) -> list[str]:
    found: list[tuple[datetime, str]] = []
    for order in call.world.orders.values():
        cut = order.visible(call.now)
        if cut is None or order.seller_id != call.account.seller_id:
            continue
        if marketplaces and order.marketplace_id not in marketplaces:
            continue
        if fulfilled_by and order.fulfilled_by not in fulfilled_by:
            continue
        if statuses and order.status_at(cut) not in statuses:
            continue
        moment = order.created if kind == "created" else order.last_updated_at(cut)
        if after <= moment <= before:
            found.append((moment, order.order_id))
    return [order_id for _, order_id in sorted(found)]


def _page(call: Call, request: Request, token_name: str, signature: str | None, select,
          echo: tuple[str, datetime] | None) -> tuple[list[str], str | None, tuple[str, datetime]]:
    """One page of a search: a token pins the result list, the filters and the echoed
    before-time for 24 h. ``signature`` None: the token alone decides (v0 ``NextToken``)."""
    size = _max_results(request, "maxResultsPerPage" if token_name == "paginationToken" else "MaxResultsPerPage")
    token = request.query_params.get(token_name)
    if token:
        state = call.world.pages.get(token)
        if state is None or state["seller_id"] != call.account.seller_id:
            raise BadInput(f"{token_name} is invalid")
        if state["expires"] <= call.now:
            raise BadInput(f"{token_name} has expired; tokens are valid for 24 hours")
        if signature is not None and state["signature"] != signature:
            raise BadInput(f"{token_name} must be used with the same filters as the first page")
        ids, offset, echo = state["ids"], state["offset"], state["echo"]
    else:
        ids, offset = select(), 0
    assert echo is not None
    page = ids[offset:offset + size]
    next_token = None
    if offset + size < len(ids):
        next_token = call.world.new_secret("")
        call.world.pages[next_token] = {"seller_id": call.account.seller_id, "ids": ids, "offset": offset + size,
                                        "signature": signature, "echo": echo,
                                        "expires": call.now + PAGE_TOKEN_LIFETIME}
    return page, next_token, echo


def _signature(request: Request, keep: set[str]) -> str:
    return json.dumps(sorted((k, v) for k, v in request.query_params.multi_items() if k not in keep))


def money(amount: Decimal, currency: str, v0: bool = False) -> dict[str, str]:
    text = str(amount.quantize(Decimal("0.01")))
    return {"CurrencyCode": currency, "Amount": text} if v0 else {"amount": text, "currencyCode": currency}


#: Standard VAT/GST rates (percent) of marketplaces whose prices include the tax; on the
#: others (US, CA, …) sales tax is added at checkout and not part of the seller's price.
INCLUDED_TAX_RATES: dict[str, Decimal] = {code: Decimal(rate) for code, rate in {
    "UK": 20, "DE": 19, "FR": 20, "IT": 22, "ES": 21, "NL": 21, "PL": 23, "SE": 25,
    "BE": 21, "IE": 23, "TR": 20, "AU": 10, "JP": 10}.items()}


def included_tax(gross: Decimal, marketplace_code: str) -> Decimal | None:
    """The tax inside a tax-inclusive price, to the cent, as Amazon reports it per item."""
    rate = INCLUDED_TAX_RATES.get(marketplace_code)
    if rate is None:
        return None
    return (gross * rate / (100 + rate)).quantize(Decimal("0.01"))


# -- v2026-01-01 ---------------------------------------------------------------------------


def render_order(order: SimOrder, cut: datetime, included: set[str], pii: bool) -> dict[str, Any]:
    status = order.status_at(cut) or "PENDING"
    market = BY_ID[order.marketplace_id]
    items = []
    for item in order.items:
        entry: dict[str, Any] = {
            "orderItemId": item.order_item_id,
            "quantityOrdered": item.quantity,
            "product": {"asin": item.asin, "title": item.title, "sellerSku": item.sku,
                        "condition": {"conditionType": "New"},
                        "price": {"unitPrice": money(item.unit_price, item.currency)}},
        }
        shipped = item.quantity if status == "SHIPPED" else order.shipped_quantity(item.order_item_id, cut)
        if "FULFILLMENT" in included:
            unfulfilled = 0 if status == "CANCELLED" else item.quantity - shipped
            entry["fulfillment"] = {"quantityFulfilled": shipped, "quantityUnfulfilled": unfulfilled}
        if "PROCEEDS" in included and status != "PENDING":
            gross = item.unit_price * item.quantity
            tax = included_tax(gross, market.code)
            entry["proceeds"] = {"proceedsTotal": money(gross, item.currency)}
            if tax is not None:  # VAT/GST is inside the price there; Amazon reports it apart
                entry["proceeds"]["breakdowns"] = [
                    {"type": "ITEM", "subtotal": money(gross - tax, item.currency)},
                    {"type": "TAX", "subtotal": money(tax, item.currency),
                     "detailedBreakdowns": [{"subtype": "ITEM", "value": money(tax, item.currency)}]}]
        if "CANCELLATION" in included and status == "CANCELLED":
            entry["cancellation"] = {"cancellationExecution": {"cancelledBy": order.cancelled_by or "AMAZON",
                                                               "cancelReason": order.cancel_reason or ""}}
        items.append(entry)
    body: dict[str, Any] = {
        "orderId": order.order_id,
        "createdTime": isoformat(order.created),
        "lastUpdatedTime": isoformat(order.last_updated_at(cut)),
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": market.id, "marketplaceName": market.name},
        "orderItems": items,
    }
    if order.fulfilled_by == "AMAZON":
        body["programs"] = ["DELIVERY_BY_AMAZON"]
    if "FULFILLMENT" in included:
        body["fulfillment"] = {"fulfillmentStatus": status, "fulfilledBy": order.fulfilled_by,
                               "fulfillmentServiceLevel": "STANDARD",
                               "shipByWindow": {"latestDateTime": isoformat(order.created + timedelta(days=2))}}
    if "PROCEEDS" in included and status != "PENDING":
        total = sum((i.unit_price * i.quantity for i in order.items), Decimal("0"))
        taxes = [included_tax(i.unit_price * i.quantity, market.code) for i in order.items]
        breakdowns = [{"type": "ITEM", "subtotal": money(total, market.currency)}]
        if all(t is not None for t in taxes) and taxes:
            tax_total = sum(taxes, Decimal("0"))
            breakdowns = [{"type": "ITEM", "subtotal": money(total - tax_total, market.currency)},
                          {"type": "TAX", "subtotal": money(tax_total, market.currency)}]
        body["proceeds"] = {"grandTotal": money(total, market.currency), "breakdowns": breakdowns}
    if pii and status not in ("PENDING", "PENDING_AVAILABILITY"):
        if "BUYER" in included:
            body["buyer"] = {"buyerName": order.buyer["buyerName"]}
            if order.fulfilled_by == "MERCHANT" and status != "CANCELLED":
                body["buyer"]["buyerEmail"] = order.buyer["buyerEmail"]
        if "RECIPIENT" in included:
            body["recipient"] = {"deliveryAddress": dict(order.address)}
    if "PACKAGES" in included and order.fulfilled_by == "MERCHANT":
        packages = [p for p in order.packages if p["at"] <= cut]
        if packages:
            body["packages"] = [_package(p) for p in packages]
    return _malform(order, body)


def _package(p: dict[str, Any]) -> dict[str, Any]:
    return {"packageReferenceId": p["packageReferenceId"], "createdTime": isoformat(p["at"]),
            "packageStatus": {"status": "SHIPPED"}, "carrier": p["carrierCode"], "shipTime": p["shipDate"],
            "trackingNumber": p["trackingNumber"],
            "packageItems": [{"orderItemId": i["orderItemId"], "quantity": i["quantity"]} for i in p["orderItems"]]}


def _malform(order: SimOrder, body: dict[str, Any]) -> dict[str, Any]:
    """Records Amazon has been seen to send (a 1995 date, an unknown enum, a missing field)
    and shape faults: JSON of the wrong type where the model has an object, array or scalar."""
    if order.malformed == "ancient_date":
        body["createdTime"] = ANCIENT
    elif order.malformed == "unknown_enum":
        body["programs"] = ["SIMULATED_FUTURE_PROGRAM"]
        if "fulfillment" in body:
            body["fulfillment"]["fulfillmentStatus"] = "AWAITING_SIMULATED_STATE"
    elif order.malformed == "missing_field":
        body.pop("createdTime", None)
    elif order.malformed == "wrong_type":  # a number where the model has an array
        body["programs"] = 5
    elif order.malformed == "string_for_object":  # text where the model has objects
        body["recipient"] = "n/a"
        if "fulfillment" in body:
            body["fulfillment"]["shipByWindow"] = "soon"
    elif order.malformed == "array_for_object":
        body["proceeds"] = ["x"]
    elif order.malformed == "array_for_scalar":
        if "fulfillment" in body:
            body["fulfillment"]["fulfillmentStatus"] = [body["fulfillment"]["fulfillmentStatus"]]
        body["orderItems"][0]["quantityOrdered"] = [body["orderItems"][0]["quantityOrdered"]]
    return body


@sp_api("searchOrders")
async def search_orders(request: Request, call: Call) -> Response:
    try:
        kind, after, before = _time_filter(call, request, v0=False)
        marketplaces = _marketplaces(call, request, "marketplaceIds")
        statuses = _list(request, "fulfillmentStatuses", STATUSES)
        fulfilled_by = _list(request, "fulfilledBy", FULFILLED_BY)
        included = set(_list(request, "includedData", DATASETS))
        signature = _signature(request, {"paginationToken", "maxResultsPerPage", "includedData"})
        ids, next_token, (kind, before) = _page(call, request, "paginationToken", signature, lambda: _select(
            call, kind=kind, after=after, before=before, marketplaces=marketplaces,
            statuses=statuses, fulfilled_by=fulfilled_by), (kind, before))
    except BadInput as exc:
        return _invalid(str(exc))
    orders = []
    for order_id in ids:
        order = call.world.orders[order_id]
        cut = order.visible(call.now) or call.now
        orders.append(render_order(order, cut, included, call.account.pii_access))
    body: dict[str, Any] = {"orders": orders}
    if next_token:
        body["pagination"] = {"nextToken": next_token}
    body["createdBefore" if kind == "created" else "lastUpdatedBefore"] = isoformat(before)
    return json_response(body)


def _visible_order(call: Call, order_id: str) -> tuple[SimOrder, datetime] | None:
    order = call.world.orders.get(order_id)
    if order is None or order.seller_id != call.account.seller_id:
        return None
    cut = order.visible(call.now)
    return None if cut is None else (order, cut)


@sp_api("getOrder")
async def get_order(request: Request, call: Call) -> Response:
    try:
        included = set(_list(request, "includedData", DATASETS))
    except BadInput as exc:
        return _invalid(str(exc))
    found = _visible_order(call, request.path_params["orderId"])
    if found is None:
        return error_response(404, "NotFound", f"Order {request.path_params['orderId']} not found")
    order, cut = found
    return json_response({"order": render_order(order, cut, included, call.account.pii_access)})


# -- v0 --------------------------------------------------------------------------------------


def _rdt_elements(request: Request, call: Call) -> set[str]:
    """Restricted data the caller may see on this v0 path: an RDT and PII access."""
    token = request.headers.get("x-amz-access-token", "")
    if not call.account.pii_access or not call.world.is_restricted_token(token):
        return set()
    return set(call.world.grants[token].data_elements)


def render_order_v0(order: SimOrder, cut: datetime, elements: set[str]) -> dict[str, Any]:
    status = order.status_at(cut) or "PENDING"
    market = BY_ID[order.marketplace_id]
    shipped = sum(i.quantity if status == "SHIPPED" else order.shipped_quantity(i.order_item_id, cut) for i in order.items)
    total = sum(i.quantity for i in order.items)
    body: dict[str, Any] = {
        "AmazonOrderId": order.order_id,
        "PurchaseDate": ANCIENT if order.malformed == "ancient_date" else isoformat(order.created),
        "LastUpdateDate": isoformat(order.last_updated_at(cut)),
        "OrderStatus": "AwaitingSimulatedState" if order.malformed == "unknown_enum" else V0_STATUS[status],
        "FulfillmentChannel": "AFN" if order.fulfilled_by == "AMAZON" else "MFN",
        "SalesChannel": market.name,
        "MarketplaceId": market.id,
        "OrderType": "StandardOrder",
        "NumberOfItemsShipped": shipped,
        "NumberOfItemsUnshipped": 0 if status == "CANCELLED" else total - shipped,
        "IsPrime": False,
        "IsBusinessOrder": False,
    }
    if status != "PENDING":
        body["OrderTotal"] = money(sum((i.unit_price * i.quantity for i in order.items), Decimal("0")), market.currency, v0=True)
    if status in ("UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED"):
        if "shippingAddress" in elements:
            a = order.address
            body["ShippingAddress"] = {"Name": a["name"], "AddressLine1": a["addressLine1"], "City": a["city"],
                                       "PostalCode": a["postalCode"], "CountryCode": a["countryCode"]}
        if "buyerInfo" in elements:
            body["BuyerInfo"] = {"BuyerEmail": order.buyer["buyerEmail"], "BuyerName": order.buyer["buyerName"]}
    if order.malformed == "missing_field":
        body.pop("PurchaseDate")
    return body


def _v0_invalid(message: str) -> Response:
    return error_response(400, "InvalidInput", message)


@sp_api("orders/v0:getOrders")
async def get_orders_v0(request: Request, call: Call) -> Response:
    try:
        if request.query_params.get("NextToken"):
            # v0: "NextToken doesn't affect any filters"; the first request's filters hold
            ids, next_token, (kind, before) = _page(call, request, "NextToken", None, list, None)
        else:
            if not _list(request, "MarketplaceIds"):
                raise BadInput("MarketplaceIds is required")
            marketplaces = _marketplaces(call, request, "MarketplaceIds")
            kind, after, before = _time_filter(call, request, v0=True)
            wanted = _list(request, "OrderStatuses", list(V0_STATUS.values()) + ["InvoiceUnconfirmed"])
            statuses = [k for k, v in V0_STATUS.items() if v in wanted]
            channels = {"AFN": "AMAZON", "MFN": "MERCHANT"}
            fulfilled_by = [channels[c] for c in _list(request, "FulfillmentChannels", ["AFN", "MFN"])]
            ids, next_token, _ = _page(call, request, "NextToken", "", lambda: _select(
                call, kind=kind, after=after, before=before, marketplaces=marketplaces,
                statuses=statuses, fulfilled_by=fulfilled_by), (kind, before))
    except BadInput as exc:
        return _v0_invalid(str(exc))
    elements = _rdt_elements(request, call)
    orders = [render_order_v0(call.world.orders[i], call.world.orders[i].visible(call.now) or call.now, elements) for i in ids]
    payload: dict[str, Any] = {"Orders": orders}
    if next_token:
        payload["NextToken"] = next_token
    payload["CreatedBefore" if kind == "created" else "LastUpdatedBefore"] = isoformat(before)
    return json_response({"payload": payload})


@sp_api("orders/v0:getOrder")
async def get_order_v0(request: Request, call: Call) -> Response:
    found = _visible_order(call, request.path_params["orderId"])
    if found is None:
        return error_response(404, "NotFound", f"Order {request.path_params['orderId']} not found")
    return json_response({"payload": render_order_v0(*found, _rdt_elements(request, call))})


@sp_api("orders/v0:getOrderItems")
async def get_order_items_v0(request: Request, call: Call) -> Response:
    found = _visible_order(call, request.path_params["orderId"])
    if found is None:
        return error_response(404, "NotFound", f"Order {request.path_params['orderId']} not found")
    order, cut = found
    status = order.status_at(cut)
    items = []
    for item in order.items:
        entry: dict[str, Any] = {"ASIN": item.asin, "SellerSKU": item.sku, "OrderItemId": item.order_item_id,
                                 "Title": item.title, "QuantityOrdered": item.quantity,
                                 "QuantityShipped": item.quantity if status == "SHIPPED" else order.shipped_quantity(item.order_item_id, cut)}
        if status != "PENDING":  # pricing is withheld while payment is pending
            entry["ItemPrice"] = money(item.unit_price * item.quantity, item.currency, v0=True)
            tax = included_tax(item.unit_price * item.quantity, BY_ID[order.marketplace_id].code)
            if tax is not None:
                entry["ItemTax"] = money(tax, item.currency, v0=True)
        items.append(entry)
    return json_response({"payload": {"AmazonOrderId": order.order_id, "OrderItems": items}})


@sp_api("confirmShipment")
async def confirm_shipment(request: Request, call: Call) -> Response:
    order_id = request.path_params["orderId"]
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        body = None
    record: dict[str, Any] = {"at": isoformat(call.now), "orderId": order_id, "sellerId": call.account.seller_id,
                              "request": body, "accepted": False}
    call.world.confirmations.append(record)
    order = call.world.orders.get(order_id)
    if order is None or order.seller_id != call.account.seller_id:
        record["error"] = "NotFound"
        return error_response(404, "NotFound", f"Order {order_id} not found")
    try:
        package = _check_confirmation(order, body, call.now)
    except BadInput as exc:
        record["error"] = str(exc)
        return _v0_invalid(str(exc))
    package["at"] = call.now
    edited = next((n for n, p in enumerate(order.packages)
                   if p["packageReferenceId"] == package["packageReferenceId"]), None)
    if edited is None:
        order.packages.append(package)
    else:  # Amazon: the same packageReferenceId again edits the confirmed package
        previous = order.packages[edited]
        package.update(at=previous["at"], edits=previous.get("edits", 0) + 1)
        order.packages[edited] = package  # the event below moves lastUpdatedTime
        record["edit"] = True
    shipped_all = all(order.shipped_quantity(i.order_item_id) >= i.quantity for i in order.items)
    order.events = [e for e in order.events if e[0] <= call.now]
    order.events.append((call.now, "SHIPPED" if shipped_all else "PARTIALLY_SHIPPED"))
    record["accepted"] = True
    return Response(status_code=204)


def _check_confirmation(order: SimOrder, body: Any, now: datetime) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadInput("The request body must be a ConfirmShipmentRequest JSON object")
    if body.get("marketplaceId") != order.marketplace_id:
        raise BadInput(f"marketplaceId {body.get('marketplaceId')!r} does not match the order's marketplace")
    detail = body.get("packageDetail")
    if not isinstance(detail, dict):
        raise BadInput("packageDetail is required")
    for key in ("packageReferenceId", "carrierCode", "trackingNumber", "shipDate", "orderItems"):
        if not detail.get(key):
            raise BadInput(f"packageDetail.{key} is required")
    reference = str(detail["packageReferenceId"])
    if not reference.isdigit() or int(reference) <= 0:
        raise BadInput("packageDetail.packageReferenceId must be a positive numeric string")
    if detail["carrierCode"] == "Other" and not detail.get("carrierName"):
        raise BadInput("packageDetail.carrierName is required when carrierCode is Other")
    try:
        ship_date = datetime.fromisoformat(str(detail["shipDate"]).replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"packageDetail.shipDate {detail['shipDate']!r} is not an ISO 8601 date-time") from None
    if ship_date.tzinfo is not None and not order.created - timedelta(days=1) <= ship_date <= now + timedelta(days=1):
        raise BadInput("packageDetail.shipDate must lie between the purchase date and now")
    if order.fulfilled_by == "AMAZON":
        raise BadInput("The order is fulfilled by Amazon; shipments cannot be confirmed by the seller")
    status = order.status_at(now)
    if status in ("PENDING", "PENDING_AVAILABILITY", "CANCELLED", "UNFULFILLABLE"):
        raise BadInput(f"The order is {V0_STATUS.get(status or '', status)} and cannot be shipped")
    # a confirmed packageReferenceId again is an edit of that package (a corrected
    # tracking number or carrier): its own quantities do not count against the order
    others = [p for p in order.packages if p["packageReferenceId"] != reference]
    lines = []
    by_id = {i.order_item_id: i for i in order.items}
    for line in detail["orderItems"]:
        item = by_id.get(str(line.get("orderItemId")))
        quantity = line.get("quantity")
        if item is None:
            raise BadInput(f"orderItemId {line.get('orderItemId')!r} is not in order {order.order_id}")
        if not isinstance(quantity, int) or quantity <= 0:
            raise BadInput(f"orderItemId {item.order_item_id}: quantity must be a positive integer")
        shipped = sum(line["quantity"] for p in others for line in p["orderItems"]
                      if line["orderItemId"] == item.order_item_id)
        if shipped + quantity > item.quantity:
            raise BadInput(f"orderItemId {item.order_item_id}: quantity exceeds the unshipped quantity")
        lines.append({"orderItemId": item.order_item_id, "quantity": quantity})
    return {"packageReferenceId": reference, "carrierCode": detail["carrierCode"],
            "trackingNumber": detail["trackingNumber"], "shipDate": detail["shipDate"], "orderItems": lines}


def routes() -> list[Route]:
    return [
        Route("/orders/2026-01-01/orders", search_orders, methods=["GET"]),
        Route("/orders/2026-01-01/orders/{orderId}", get_order, methods=["GET"]),
        Route("/orders/v0/orders", get_orders_v0, methods=["GET"]),
        Route("/orders/v0/orders/{orderId}", get_order_v0, methods=["GET"]),
        Route("/orders/v0/orders/{orderId}/orderItems", get_order_items_v0, methods=["GET"]),
        Route("/orders/v0/orders/{orderId}/shipmentConfirmation", confirm_shipment, methods=["POST"]),
    ]
