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
from .feeds import BadInput, csv_param, invalid, json_body, not_found
from .gateway import DENIED_MESSAGE, Call, error_response, json_response, sp_api

if TYPE_CHECKING:
    from .catalog import Catalog, Offer

BASE = "/listings/2021-08-01/items"
INCLUDED = ("summaries", "attributes", "issues", "offers", "fulfillmentAvailability",
            "procurement", "relationships", "productTypes")
PATCH_OPS = ("add", "replace", "merge", "delete")


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


def routes(catalog: Catalog) -> list[BaseRoute]:
    path = f"{BASE}/{{sellerId}}/{{sku:path}}"
    return [
        Route(path, get_listings_item, methods=["GET"]),
        Route(path, patch_listings_item, methods=["PATCH"]),
        Route(path, delete_listings_item, methods=["DELETE"]),
    ]
