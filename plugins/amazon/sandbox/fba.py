"""FBA Inventory v1: ``getInventorySummaries``, with Amazon's 30-second page tokens.

FBA stock is Amazon's; the daemon only imports it. The one trap worth simulating is the
paging: a ``nextToken`` dies 30 s after it was issued (the model says so), so a client that
sleeps between pages — for instance because its governor made it wait — must restart
from the first page. Stock itself drifts over time (``Catalog._drift_fba``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from marketsync.core import clock

from .feeds import BadInput, csv_param, invalid, parse_time
from .gateway import Call, json_response, sp_api

if TYPE_CHECKING:
    from .catalog import Catalog, Offer

PATH = "/fba/inventory/v1/summaries"
EXPIRED_MESSAGE = "Next token is invalid or expired"


@dataclass
class _PageToken:
    seller_id: str
    query: tuple[Any, ...]
    offset: int
    issued: datetime


class FbaInventory:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.tokens: dict[str, _PageToken] = {}

    def summaries(self, seller_id: str, marketplace_id: str, *, since: datetime | None,
                  skus: list[str] | None) -> list[Offer]:
        found = []
        for offer in self.catalog.offers(seller_id):
            if not offer.is_fba or offer.fba is None or marketplace_id not in offer.marketplaces:
                continue
            if since is not None:
                if offer.fba.updated is None or offer.fba.updated < since:
                    continue
            elif skus is not None and offer.sku not in skus:
                continue
            found.append(offer)
        return found

    def take_token(self, token: str, seller_id: str, query: tuple[Any, ...],
                   now: datetime) -> int:
        """The offset a token stands for; BadInput when it is unknown, foreign or stale."""
        page = self.tokens.get(token)
        ttl = self.catalog.timing.fba_next_token_ttl
        if (page is None or page.seller_id != seller_id or page.query != query
                or now > page.issued + ttl):
            raise BadInput(EXPIRED_MESSAGE)
        return page.offset

    def issue_token(self, seller_id: str, query: tuple[Any, ...], offset: int,
                    now: datetime) -> str:
        ttl = self.catalog.timing.fba_next_token_ttl
        for stale in [t for t, p in self.tokens.items() if now > p.issued + ttl * 10]:
            del self.tokens[stale]
        token = self.catalog.new_token(48)
        self.tokens[token] = _PageToken(seller_id, query, offset, now)
        return token


def render_summary(offer: Offer, details: bool) -> dict[str, Any]:
    stock = offer.fba
    assert stock is not None
    summary: dict[str, Any] = {
        "asin": offer.asin, "fnSku": offer.fnsku or "", "sellerSku": offer.sku,
        "condition": "NewItem",
        "lastUpdatedTime": clock.isoformat(stock.updated or offer.updated),
        "productName": offer.title, "totalQuantity": stock.total,
    }
    if details:
        summary["inventoryDetails"] = {
            "fulfillableQuantity": stock.fulfillable,
            "inboundWorkingQuantity": stock.inbound_working,
            "inboundShippedQuantity": stock.inbound_shipped,
            "inboundReceivingQuantity": stock.inbound_receiving,
            "reservedQuantity": {
                "totalReservedQuantity": stock.reserved,
                "pendingCustomerOrderQuantity": stock.reserved,
                "pendingTransshipmentQuantity": 0, "fcProcessingQuantity": 0},
            "researchingQuantity": {
                "totalResearchingQuantity": stock.researching,
                "researchingQuantityBreakdown": [
                    {"name": "researchingQuantityInShortTerm", "quantity": stock.researching},
                    {"name": "researchingQuantityInMidTerm", "quantity": 0},
                    {"name": "researchingQuantityInLongTerm", "quantity": 0}]},
            "unfulfillableQuantity": {
                "totalUnfulfillableQuantity": stock.unfulfillable,
                "customerDamagedQuantity": 0, "warehouseDamagedQuantity": stock.unfulfillable,
                "distributorDamagedQuantity": 0, "carrierDamagedQuantity": 0,
                "defectiveQuantity": 0, "expiredQuantity": 0},
        }
    return summary


@sp_api("getInventorySummaries")
async def get_inventory_summaries(request: Request, call: Call) -> Response:
    inventory = call.world.catalog.fba
    params = request.query_params
    try:
        if params.get("granularityType") != "Marketplace":
            raise BadInput("granularityType is required and must be Marketplace")
        granularity_id = params.get("granularityId")
        if not granularity_id:
            raise BadInput("granularityId is required")
        marketplaces = csv_param(request, "marketplaceIds", limit=1)
        if marketplaces is None:
            raise BadInput("marketplaceIds is required")
        if marketplaces[0] != granularity_id:
            raise BadInput("marketplaceIds must name the granularityId marketplace")
        if granularity_id not in call.account.marketplace_ids:
            raise BadInput(f"{granularity_id} is not a marketplace of this selling partner")
        details = params.get("details", "false").lower()
        if details not in ("true", "false"):
            raise BadInput("details must be true or false")
        since = parse_time(params.get("startDateTime"), "startDateTime")
        skus = csv_param(request, "sellerSkus", limit=50)
        if skus is None and params.get("sellerSku"):
            skus = [params["sellerSku"]]
        query = (granularity_id, details, since, None if since else tuple(skus or ()) or None)
        token = params.get("nextToken")
        offset = (0 if token is None else
                  inventory.take_token(token, call.account.seller_id, query, call.now))
    except BadInput as exc:
        return invalid(str(exc))
    found = inventory.summaries(call.account.seller_id, granularity_id, since=since,
                                skus=None if since else skus)
    size = call.world.catalog.timing.fba_page_size
    page = found[offset:offset + size]
    body: dict[str, Any] = {"payload": {
        "granularity": {"granularityType": "Marketplace", "granularityId": granularity_id},
        "inventorySummaries": [render_summary(o, details == "true") for o in page]}}
    if offset + size < len(found):
        body["pagination"] = {"nextToken": inventory.issue_token(
            call.account.seller_id, query, offset + size, call.now)}
    return json_response(body)


def routes(catalog: Catalog) -> list[BaseRoute]:
    return [Route(PATH, get_inventory_summaries, methods=["GET"])]
