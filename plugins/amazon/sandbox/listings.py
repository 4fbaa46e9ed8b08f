"""Listings Items API 2021-08-01: read one listing, patch it, delete it.

``render_item`` is also what the JSON_LISTINGS_FEED processing report echoes, so a listing
looks the same whichever way the daemon reads it. Patches go through the same message
logic as feed PATCH messages (``listings_feed.apply_message``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from marketsync.core import clock

from . import listings_feed
from .feeds import BadInput, csv_param, invalid, json_body, not_found, parse_time
from .gateway import DENIED_MESSAGE, Call, error_response, json_response, sp_api

if TYPE_CHECKING:
    from .catalog import Catalog, Offer

BASE = "/listings/2021-08-01/items"
INCLUDED = ("summaries", "attributes", "issues", "offers", "fulfillmentAvailability",
            "procurement", "relationships", "productTypes")
PATCH_OPS = ("add", "replace", "merge", "delete")
IDENTIFIER_TYPES = ("ASIN", "EAN", "FNSKU", "GTIN", "ISBN", "JAN", "MINSAN", "SKU", "UPC")
SEARCH_LIMIT = 1000          # "only the first 1,000 SKUs can be paged" (model)


def render_item(catalog: Catalog, offer: Offer, marketplace_ids: list[str],
                included: list[str]) -> dict[str, Any]:
    """The ``Item`` of getListingsItem, limited to the marketplaces asked for."""
    markets = [m for m in marketplace_ids if m in offer.marketplaces]
    item: dict[str, Any] = {"sku": offer.sku}
    if "summaries" in included:
        item["summaries"] = [_summary(offer, m) for m in markets]
    if "attributes" in included:
        item["attributes"] = _attributes(offer, markets)
    if "issues" in included:
        item["issues"] = []
    if "offers" in included:
        item["offers"] = [
            {"marketplaceId": m, "offerType": "B2C",
             "price": {"currencyCode": offer.marketplaces[m].currency,
                       "amount": str(offer.marketplaces[m].price)},
             "audience": {"value": "ALL", "displayName": "Sell on Amazon"}}
            for m in markets if offer.marketplaces[m].price is not None]
    if "fulfillmentAvailability" in included:
        if offer.is_fba:
            item["fulfillmentAvailability"] = [{
                "fulfillmentChannelCode": catalog.fba_channel_code(offer.seller_id),
                "quantity": offer.fba.fulfillable if offer.fba else 0}]
        else:
            availability: dict[str, Any] = {"fulfillmentChannelCode": "DEFAULT"}
            if offer.quantity is not None:
                availability["quantity"] = offer.quantity
            item["fulfillmentAvailability"] = [availability]
    if "relationships" in included:
        item["relationships"] = [{"marketplaceId": m, "relationships": []} for m in markets]
    if "productTypes" in included:
        item["productTypes"] = [{"marketplaceId": m, "productType": offer.product_type}
                                for m in markets]
    return item


def _summary(offer: Offer, marketplace_id: str) -> dict[str, Any]:
    listed = offer.marketplaces[marketplace_id]
    status = [] if listed.status == "INACTIVE" else ["DISCOVERABLE"]
    if offer.buyable(marketplace_id):
        status.insert(0, "BUYABLE")
    summary: dict[str, Any] = {
        "marketplaceId": marketplace_id, "asin": offer.asin, "productType": offer.product_type,
        "conditionType": "new_new", "status": status, "itemName": offer.title,
        "createdDate": clock.isoformat(offer.created),
        "lastUpdatedDate": clock.isoformat(offer.updated),
    }
    if offer.fnsku:
        summary["fnSku"] = offer.fnsku
    return summary


def _attributes(offer: Offer, markets: list[str]) -> dict[str, Any]:
    attributes: dict[str, Any] = {k: v for k, v in offer.attributes.items()}
    attributes.setdefault("item_name", [{"value": offer.title, "language_tag": "en_US"}])
    if not offer.is_fba and (offer.quantity is not None or offer.handling_time is not None):
        entry: dict[str, Any] = {"fulfillment_channel_code": "DEFAULT"}
        if offer.quantity is not None:
            entry["quantity"] = offer.quantity
        if offer.handling_time is not None:
            entry["lead_time_to_ship_max_days"] = offer.handling_time
        attributes["fulfillment_availability"] = [entry]
    prices = [{"marketplace_id": m, "currency": offer.marketplaces[m].currency,
               "audience": "ALL",
               "our_price": [{"schedule": [
                   {"value_with_tax": float(offer.marketplaces[m].price)}]}]}
              for m in markets if offer.marketplaces[m].price is not None]
    if prices:
        attributes["purchasable_offer"] = prices
    return attributes


def api_issue(found: dict[str, Any], marketplace_ids: list[str]) -> dict[str, Any]:
    """A processing-report issue in the Listings Items ``Issue`` shape."""
    result: dict[str, Any] = {"code": found["code"], "message": found["message"],
                              "severity": found["severity"], "categories": [],
                              "marketplaceIds": marketplace_ids}
    if "attributeName" in found:
        result["attributeNames"] = [found["attributeName"]]
    return result


def _common(request: Request, call: Call, *, max_marketplaces: int | None
            ) -> tuple[str, list[str]]:
    """Check the path seller and marketplaceIds shared by every operation here."""
    if request.path_params["sellerId"] != call.account.seller_id:
        raise PermissionError
    marketplace_ids = csv_param(request, "marketplaceIds", limit=max_marketplaces)
    if marketplace_ids is None:
        raise BadInput("marketplaceIds is required")
    foreign = [m for m in marketplace_ids if m not in call.account.marketplace_ids]
    if foreign:
        raise BadInput(f"marketplaceIds {foreign} are not marketplaces of this selling partner")
    return request.path_params["sku"], marketplace_ids


def _denied() -> Response:
    return error_response(403, "Unauthorized", DENIED_MESSAGE)


@sp_api("getListingsItem")
async def get_listings_item(request: Request, call: Call) -> Response:
    try:
        sku, marketplace_ids = _common(request, call, max_marketplaces=None)
        included = csv_param(request, "includedData", allowed=INCLUDED) or ["summaries"]
    except PermissionError:
        return _denied()
    except BadInput as exc:
        return invalid(str(exc))
    catalog = call.world.catalog
    offer = catalog.get(call.account.seller_id, sku)
    if offer is None or not set(marketplace_ids) & offer.marketplaces.keys():
        return not_found(f"SKU '{sku}' not found in marketplace(s) {','.join(marketplace_ids)}")
    return json_response(render_item(catalog, offer, marketplace_ids, included))


@sp_api("patchListingsItem")
async def patch_listings_item(request: Request, call: Call) -> Response:
    try:
        sku, marketplace_ids = _common(request, call, max_marketplaces=None)
        mode = request.query_params.get("mode")
        if mode not in (None, "VALIDATION_PREVIEW"):
            raise BadInput(f"mode must be VALIDATION_PREVIEW, not {mode!r}")
        included = csv_param(request, "includedData", allowed=("identifiers", "issues")) or [
            "issues"]
        if "identifiers" in included and mode is None:
            raise BadInput("includedData=identifiers needs mode=VALIDATION_PREVIEW")
        body = await json_body(request)
        _check_patch_request(body)
    except PermissionError:
        return _denied()
    except BadInput as exc:
        return invalid(str(exc))
    catalog = call.world.catalog
    message = {"sku": sku, "operationType": "PATCH", "productType": body["productType"],
               "patches": body["patches"]}
    found = listings_feed.apply_message(catalog, call.account.seller_id, marketplace_ids,
                                        message, dry_run=mode is not None)
    status = ("INVALID" if any(i["severity"] == "ERROR" for i in found)
              else "VALID" if mode else "ACCEPTED")
    answer: dict[str, Any] = {"sku": sku, "status": status,
                              "submissionId": catalog.new_token(32).lower()}
    if "issues" in included:
        answer["issues"] = [api_issue(i, marketplace_ids) for i in found]
    offer = catalog.get(call.account.seller_id, sku)
    if "identifiers" in included and offer is not None:
        answer["identifiers"] = [{"marketplaceId": m, "asin": offer.asin}
                                 for m in marketplace_ids if m in offer.marketplaces]
    return json_response(answer)


def _check_patch_request(body: dict[str, Any]) -> None:
    """ListingsItemPatchRequest: productType and a non-empty list of patch operations."""
    if not isinstance(body.get("productType"), str) or not body["productType"]:
        raise BadInput("productType is required")
    patches = body.get("patches")
    if not isinstance(patches, list) or not patches:
        raise BadInput("patches must be a non-empty array")
    for index, patch in enumerate(patches):
        if not isinstance(patch, dict) or patch.get("op") not in PATCH_OPS:
            raise BadInput(f"patches[{index}].op must be one of {list(PATCH_OPS)}")
        if not isinstance(patch.get("path"), str):
            raise BadInput(f"patches[{index}].path is required")
        value = patch.get("value")
        if value is not None and (not isinstance(value, list)
                                  or not all(isinstance(v, dict) for v in value)):
            raise BadInput(f"patches[{index}].value must be an array of objects")


@sp_api("deleteListingsItem")
async def delete_listings_item(request: Request, call: Call) -> Response:
    try:
        sku, marketplace_ids = _common(request, call, max_marketplaces=1)
    except PermissionError:
        return _denied()
    except BadInput as exc:
        return invalid(str(exc))
    catalog = call.world.catalog
    offer = catalog.get(call.account.seller_id, sku)
    answer: dict[str, Any] = {"sku": sku, "submissionId": catalog.new_token(32).lower()}
    if offer is None or marketplace_ids[0] not in offer.marketplaces:
        problem = listings_feed.issue(f"The SKU '{sku}' is not listed in marketplace "
                                      f"{marketplace_ids[0]}", code=listings_feed.CODE_NOT_FOUND)
        return json_response(dict(answer, status="INVALID",
                                  issues=[api_issue(problem, marketplace_ids)]))
    del offer.marketplaces[marketplace_ids[0]]
    if not offer.marketplaces:
        catalog.delete(offer)
    else:
        offer.updated = call.now
    return json_response(dict(answer, status="ACCEPTED", issues=[]))


def _identifier(offer: Offer, kind: str) -> str | None:
    return {"SKU": offer.sku, "ASIN": offer.asin, "FNSKU": offer.fnsku,
            "EAN": offer.ean, "GTIN": offer.ean}.get(kind)


def _status(offer: Offer, marketplace_id: str) -> set[str]:
    return set(_summary(offer, marketplace_id)["status"])


@sp_api("searchListingsItems")
async def search_listings_items(request: Request, call: Call) -> Response:
    """Search by identifiers, dates and status; pages of at most 20, the first 1,000 only."""
    catalog = call.world.catalog
    params = request.query_params
    try:
        if request.path_params["sellerId"] != call.account.seller_id:
            return _denied()
        token = params.get("pageToken")
        if token is not None:
            if token not in catalog.listing_search_tokens:
                raise BadInput("pageToken is invalid")
            skus, offset, size, marketplace_ids, included = catalog.listing_search_tokens[token]
        else:
            marketplace_ids = csv_param(request, "marketplaceIds")
            if marketplace_ids is None:
                raise BadInput("marketplaceIds is required")
            if set(marketplace_ids) - set(call.account.marketplace_ids):
                raise BadInput("marketplaceIds must be marketplaces of this selling partner")
            included = csv_param(request, "includedData", allowed=INCLUDED) or ["summaries"]
            skus = _search(catalog, call, request, marketplace_ids)
            raw_size = params.get("pageSize", "10")
            if not raw_size.isdigit() or not 1 <= int(raw_size) <= 20:
                raise BadInput(f"pageSize must be an integer 1..20, not {raw_size!r}")
            offset, size = 0, int(raw_size)
    except BadInput as exc:
        return invalid(str(exc))
    offers = [o for o in (catalog.get(call.account.seller_id, s) for s in
                          skus[offset:offset + size]) if o is not None]
    body: dict[str, Any] = {"numberOfResults": len(skus), "items": [
        render_item(catalog, o, marketplace_ids, included) for o in offers]}
    pagination: dict[str, str] = {}
    for key, start in (("nextToken", offset + size), ("previousToken", offset - size)):
        if 0 <= start < min(len(skus), SEARCH_LIMIT) and (key == "nextToken" or offset > 0):
            page_token = catalog.new_token()
            catalog.listing_search_tokens[page_token] = (
                skus, start, size, marketplace_ids, included)
            pagination[key] = page_token
    if pagination:
        body["pagination"] = pagination
    return json_response(body)


def _search(catalog: Catalog, call: Call, request: Request,
            marketplace_ids: list[str]) -> list[str]:
    """The SKUs matching the search filters, in the requested order."""
    params = request.query_params
    identifiers = csv_param(request, "identifiers", limit=20)
    kind = params.get("identifiersType")
    if (identifiers is None) != (kind is None):
        raise BadInput("identifiers and identifiersType go together")
    if kind is not None and kind not in IDENTIFIER_TYPES:
        raise BadInput(f"identifiersType must be one of {list(IDENTIFIER_TYPES)}")
    bounds = [(parse_time(params.get(name), name), field, name.endswith("After"))
              for name, field in (("createdAfter", "created"), ("createdBefore", "created"),
                                  ("lastUpdatedAfter", "updated"),
                                  ("lastUpdatedBefore", "updated"))]
    with_status = set(csv_param(request, "withStatus", allowed=("BUYABLE", "DISCOVERABLE"))
                      or ())
    without = set(csv_param(request, "withoutStatus", allowed=("BUYABLE", "DISCOVERABLE"))
                  or ())
    severities = csv_param(request, "withIssueSeverity", allowed=("WARNING", "ERROR"))
    sort_by = params.get("sortBy", "lastUpdatedDate")
    order = params.get("sortOrder", "DESC")
    if sort_by not in ("sku", "createdDate", "lastUpdatedDate") or order not in ("ASC", "DESC"):
        raise BadInput("sortBy must be sku|createdDate|lastUpdatedDate, sortOrder ASC|DESC")
    found = []
    for offer in catalog.offers(call.account.seller_id):
        market = next((m for m in marketplace_ids if m in offer.marketplaces), None)
        if market is None or severities or params.get("variationParentSku") or params.get(
                "packageHierarchySku"):
            continue          # no issues and no variations are simulated
        if identifiers is not None and _identifier(offer, kind or "") not in identifiers:
            continue
        if not all(moment is None or (getattr(offer, field) >= moment if after
                                      else getattr(offer, field) <= moment)
                   for moment, field, after in bounds):
            continue
        status = _status(offer, market)
        if (with_status and not with_status & status) or without & status:
            continue
        found.append(offer)
    key = {"sku": lambda o: o.sku, "createdDate": lambda o: (o.created, o.sku),
           "lastUpdatedDate": lambda o: (o.updated, o.sku)}[sort_by]
    found.sort(key=key, reverse=order == "DESC")
    return [o.sku for o in found]


def routes(catalog: Catalog) -> list[BaseRoute]:
    path = f"{BASE}/{{sellerId}}/{{sku:path}}"
    return [
        Route(f"{BASE}/{{sellerId}}", search_listings_items, methods=["GET"]),
        Route(path, get_listings_item, methods=["GET"]),
        Route(path, patch_listings_item, methods=["PATCH"]),
        Route(path, delete_listings_item, methods=["DELETE"]),
    ]
