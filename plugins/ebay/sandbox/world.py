"""The simulated eBay's state: tokens, offers, orders, fulfilments, quotas and the call log.

Handlers (``oauth.py``, ``fulfillment.py``, ``inventory.py``, ``analytics.py``) only
translate HTTP to calls on :class:`World` and back, so tests and the control API can
steer and read the same state. Everything is in memory and keyed by the seller's user id.
"""

from __future__ import annotations

import heapq
import itertools
import random
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from marketsync.core import clock

from .contract import MARKETPLACES
from .scenario import Account, Application, Item, Scenario

UTC = timezone.utc
ACCESS_LIFETIME = 7200  #: seconds; eBay's user access token lives two hours
REFRESH_LIFETIME = 47_304_000  #: seconds (18 months)
CODE_LIFETIME = 299  #: seconds an authorization code may be redeemed
NAMES = ("Ada Byron", "Jon Snowe", "Mia Kluge", "Rui Costa", "Ola Nord", "Li Wen", "Eva Roth")
STREETS = ("1 High Street", "22 Market Road", "5 Mill Lane", "17 Station Way")

#: operation -> (api context, api name): the daily quota it draws on
API_OF = {
    "getOrders": ("sell", "fulfillment"),
    "getOrder": ("sell", "fulfillment"),
    "createShippingFulfillment": ("sell", "fulfillment"),
    "getShippingFulfillments": ("sell", "fulfillment"),
    "getInventoryItems": ("sell", "inventory"),
    "getOffers": ("sell", "inventory"),
    "bulkUpdatePriceQuantity": ("sell", "inventory"),
    "getUser": ("commerce", "identity"),
    "getRateLimits": ("developer", "analytics"),
}


@dataclass
class Offer:
    offer_id: str
    listing_id: str
    item: Item
    available: int
    price: Decimal
    sold: int = 0

    @property
    def currency(self) -> str:
        return MARKETPLACES[self.item.marketplace][0]


@dataclass
class CallRecord:
    at: datetime
    operation: str
    status: int
    user_id: str | None
    client_id: str | None
    path: str


@dataclass
class Token:
    user_id: str
    client_id: str
    expires_at: datetime
    used: bool = False  #: authorization codes only
    revoked: bool = False


@dataclass
class Fault:
    status: int
    times: int


@dataclass(order=True)
class _Event:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    data: dict = field(compare=False, default_factory=dict)


class World:
    """One simulated eBay. ``now`` defaults to ``core.clock.now`` (MockClock in tests)."""

    def __init__(self, scenario: Scenario, *, now: Callable[[], datetime] | None = None,
                 base_url: str = "http://ebay-sandbox.local"):
        self.scenario = scenario
        self.now = now or clock.now
        self.base_url = base_url
        self.zone = ZoneInfo(scenario.day_timezone)
        self.apps: dict[str, Application] = {a.client_id: a for a in scenario.applications}
        self.accounts: dict[str, Account] = {a.user_id: a for a in scenario.accounts}
        self.refresh_tokens: dict[str, Token] = {}
        self.access_tokens: dict[str, Token] = {}
        self.codes: dict[str, Token] = {}
        self.offers: dict[str, dict[str, Offer]] = defaultdict(dict)  #: user -> sku -> offer
        self.orders: dict[str, dict[str, dict]] = defaultdict(dict)  #: user -> id -> order
        self.fulfillments: dict[str, list[dict]] = defaultdict(list)  #: order id -> list
        self.revisions: Counter[tuple[str, date]] = Counter()  #: (listing, day) -> count
        self.usage: Counter[tuple[str, str, date]] = Counter()  #: (client, api, day)
        self.calls: list[CallRecord] = []
        self.faults: dict[str, list[Fault]] = defaultdict(list)
        self.malformed: dict[str, list[dict]] = defaultdict(list)  #: user -> raw orders
        self._ids = itertools.count(1)
        self._events: list[_Event] = []
        self._seq = itertools.count()
        self._planned_until: date | None = None
        start = self.now()
        for account in scenario.accounts:
            for token in account.refresh_tokens:
                client = scenario.applications[0].client_id if scenario.applications else ""
                self.refresh_tokens[token] = Token(account.user_id, client,
                                                   start + timedelta(seconds=REFRESH_LIFETIME))
        rng = random.Random(f"{scenario.seed}:listings")
        for item in scenario.catalog:
            offer = Offer(offer_id=str(rng.randrange(10**9, 10**10)),
                          listing_id=str(rng.randrange(10**11, 10**12)), item=item,
                          available=item.quantity, price=item.price)
            self.offers[item.account][item.sku] = offer
        self._history_from = start - timedelta(days=scenario.history_days)

    # --- time -------------------------------------------------------------------------------

    def day(self, moment: datetime | None = None) -> date:
        """The calendar day that quotas and revision limits count in (eBay: Pacific time)."""
        return (moment or self.now()).astimezone(self.zone).date()

    def next_reset(self, moment: datetime | None = None) -> datetime:
        """When the current day's quotas and revision counts start again."""
        local_day = self.day(moment) + timedelta(days=1)
        return datetime.combine(local_day, time(0), self.zone).astimezone(UTC)

    def advance(self) -> None:
        """Place every planned order and cancellation up to now."""
        now = self.now()
        self._plan_until(self.day(now))
        while self._events and self._events[0].at <= now:
            event = heapq.heappop(self._events)
            if event.kind == "sale":
                self._generated_sale(event)
            elif event.kind == "cancel":
                self.cancel(event.data["user"], event.data["order_id"], at=event.at)

    def generate_from(self, moment: datetime) -> None:
        """(Re)start the order generator at ``moment`` (after its rates were changed): the
        current day is planned again from there on, nothing before it is placed."""
        self._history_from = moment
        self._events = [e for e in self._events if e.kind != "sale"]
        heapq.heapify(self._events)
        self._planned_until = self.day(moment) - timedelta(days=1)

    def _plan_until(self, today: date) -> None:
        first = self._planned_until + timedelta(days=1) if self._planned_until else self.day(self._history_from)
        day = first
        while day <= today:
            for (user, market), per_day in sorted(self.scenario.orders_per_day.items()):
                rng = random.Random(f"{self.scenario.seed}:{user}:{market}:{day.isoformat()}")
                begin = datetime.combine(day, time(0), self.zone).astimezone(UTC)
                count = int(per_day) + (1 if rng.random() < per_day % 1 else 0)
                for _ in range(count):
                    at = begin + timedelta(seconds=rng.uniform(0, 86400))
                    if at < self._history_from:
                        continue
                    heapq.heappush(self._events, _Event(at, next(self._seq), "sale", {
                        "user": user, "market": market, "pick": rng.random(),
                        "quantity": 1 if rng.random() < 0.8 else 2,
                        "cancel": rng.random() < self.scenario.cancel_share,
                        "cancel_after": rng.uniform(600, 6 * 3600), "buyer": rng.randrange(10**6)}))
            day += timedelta(days=1)
        self._planned_until = today

    def _generated_sale(self, event: _Event) -> None:
        data = event.data
        offers = [o for o in self.offers[data["user"]].values()
                  if o.item.marketplace == data["market"] and o.item.published and o.available > 0]
        if not offers:
            return
        offer = offers[int(data["pick"] * len(offers))]
        order = self.sell(data["user"], offer.item.sku, min(data["quantity"], offer.available),
                          at=event.at, buyer_seed=data["buyer"])
        if data["cancel"]:
            heapq.heappush(self._events, _Event(
                event.at + timedelta(seconds=data["cancel_after"]), next(self._seq), "cancel",
                {"user": data["user"], "order_id": order["orderId"]}))

    # --- ids, tokens, quotas ------------------------------------------------------------------

    def new_id(self) -> int:
        return next(self._ids)

    def issue_code(self, user_id: str, client_id: str) -> str:
        code = f"v^1.1#i^1#sandbox-code#{secrets.token_urlsafe(12)}"
        self.codes[code] = Token(user_id, client_id, self.now() + timedelta(seconds=CODE_LIFETIME))
        return code

    def issue_refresh(self, user_id: str, client_id: str) -> str:
        token = f"v^1.1#i^1#r^1#sandbox-refresh#{secrets.token_urlsafe(16)}"
        self.refresh_tokens[token] = Token(user_id, client_id,
                                           self.now() + timedelta(seconds=REFRESH_LIFETIME))
        return token

    def issue_access(self, user_id: str, client_id: str) -> str:
        token = f"v^1.1#i^1#p^3#sandbox-access#{secrets.token_urlsafe(16)}"
        self.access_tokens[token] = Token(user_id, client_id,
                                          self.now() + timedelta(seconds=ACCESS_LIFETIME))
        return token

    def authenticate(self, header: str) -> Token | None:
        if not header.startswith("Bearer "):
            return None
        token = self.access_tokens.get(header[len("Bearer "):])
        if token is None or token.revoked or token.expires_at <= self.now():
            return None
        return token

    def revoke(self, user_id: str) -> None:
        """The seller withdrew consent: every token of theirs stops working."""
        for token in (*self.refresh_tokens.values(), *self.access_tokens.values()):
            if token.user_id == user_id:
                token.revoked = True

    def charge(self, client_id: str, operation: str) -> bool:
        """Count one call against the application's daily quota; False when it is spent."""
        context, name = API_OF[operation]
        key = (client_id, f"{context}.{name}", self.day())
        if self.usage[key] >= self.scenario.quotas[f"{context}.{name}"]:
            return False
        self.usage[key] += 1
        return True

    def quota(self, client_id: str, api: str) -> tuple[int, int]:
        """(limit, remaining) of ``api`` for the application today."""
        limit = self.scenario.quotas[api]
        return limit, max(0, limit - self.usage[(client_id, api, self.day())])

    def fault_for(self, operation: str) -> int | None:
        queue = self.faults.get(operation)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        return fault.status

    def log(self, operation: str, status: int, token: Token | None, path: str,
            client_id: str | None = None) -> None:
        self.calls.append(CallRecord(self.now(), operation, status,
                                     token.user_id if token else None,
                                     token.client_id if token else client_id, path))

    # --- selling ------------------------------------------------------------------------------

    def sell(self, user_id: str, sku: str, quantity: int = 1, *, at: datetime | None = None,
             buyer_seed: int = 0) -> dict:
        """A buyer bought ``quantity`` of ``sku``: the offer's quantity drops, an order appears."""
        offer = self.offers[user_id].get(sku)
        if offer is None:
            raise KeyError(f"{user_id} has no offer for {sku!r}")
        if quantity < 1 or quantity > offer.available:
            raise ValueError(f"{sku}: cannot sell {quantity}, {offer.available} available")
        at = at or self.now()
        offer.available -= quantity
        offer.sold += quantity
        number = self.new_id()
        order_id = f"{(number * 7919) % 100:02d}-{10000 + number:05d}-{(number * 104729) % 100000:05d}"
        currency = offer.currency
        stamp = _iso(at)
        line_total = offer.price * quantity
        rng = random.Random(buyer_seed)
        name = rng.choice(NAMES)
        country = MARKETPLACES[offer.item.marketplace][1]
        order = {
            "orderId": order_id,
            "creationDate": stamp,
            "lastModifiedDate": stamp,
            "orderFulfillmentStatus": "NOT_STARTED",
            "orderPaymentStatus": "PAID",
            "sellerId": self.accounts[user_id].username,
            "salesRecordReference": str(1000 + number),
            "buyer": {"username": f"buyer{rng.randrange(10**5)}"},
            "cancelStatus": {"cancelState": "NONE_REQUESTED", "cancelRequests": []},
            "pricingSummary": {"priceSubtotal": _amount(line_total, currency),
                               "deliveryCost": _amount(Decimal("0.00"), currency),
                               "total": _amount(line_total, currency)},
            "fulfillmentStartInstructions": [{
                "fulfillmentInstructionsType": "SHIP_TO",
                "ebaySupportedFulfillment": False,
                "shippingStep": {"shippingCarrierCode": "USPS" if country == "US" else "Royal Mail",
                                 "shippingServiceCode": "Standard",
                                 "shipTo": {"fullName": name,
                                            "email": f"{name.split()[0].lower()}@members.ebay.example",
                                            "primaryPhone": {"phoneNumber": "0123456789"},
                                            "contactAddress": {"addressLine1": rng.choice(STREETS),
                                                               "city": "Springfield",
                                                               "postalCode": "12345",
                                                               "countryCode": country}}}}],
            "fulfillmentHrefs": [],
            "lineItems": [{
                "lineItemId": str(10**10 + number * 10 + 1),
                "legacyItemId": offer.listing_id,
                "sku": sku,
                "title": offer.item.title,
                "quantity": quantity,
                "lineItemCost": _amount(line_total, currency),
                "total": _amount(line_total, currency),
                "lineItemFulfillmentStatus": "NOT_STARTED",
                "listingMarketplaceId": offer.item.marketplace,
                "purchaseMarketplaceId": offer.item.marketplace,
                "soldFormat": "FIXED_PRICE",
                "taxes": [],
                "refunds": [],
            }],
        }
        self.orders[user_id][order_id] = order
        return order

    def cancel(self, user_id: str, order_id: str, *, at: datetime | None = None) -> dict:
        """The sale is cancelled (buyer request accepted): stock goes back to the offer."""
        order = self.orders[user_id][order_id]
        if order["cancelStatus"]["cancelState"] == "CANCELED" or order["orderFulfillmentStatus"] != "NOT_STARTED":
            return order
        at = at or self.now()
        order["cancelStatus"] = {"cancelState": "CANCELED", "cancelledDate": _iso(at),
                                 "cancelRequests": [{"cancelInitiator": "BUYER",
                                                     "cancelReason": "BUYER_ASKED_CANCEL",
                                                     "cancelRequestedDate": _iso(at),
                                                     "cancelCompletedDate": _iso(at),
                                                     "cancelRequestId": str(self.new_id()),
                                                     "cancelRequestState": "COMPLETED"}]}
        order["orderPaymentStatus"] = "FULLY_REFUNDED"
        order["lastModifiedDate"] = _iso(at)
        for line in order["lineItems"]:
            offer = self.offers[user_id].get(line["sku"])
            if offer is not None:
                offer.available += line["quantity"]
                offer.sold -= line["quantity"]
        return order

    def ship(self, user_id: str, order_id: str, details: dict) -> tuple[int, dict]:
        """createShippingFulfillment: (status, body-or-fulfilment)."""
        order = self.orders[user_id].get(order_id)
        if order is None:
            return 404, error(32100, "Invalid order ID: " + order_id, domain="API_FULFILLMENT")
        if order["cancelStatus"]["cancelState"] == "CANCELED":
            return 400, error(32800, "The order is cancelled and cannot be shipped.",
                              domain="API_FULFILLMENT")
        lines = {line["lineItemId"]: line for line in order["lineItems"]}
        refs = details.get("lineItems")
        if not isinstance(refs, list) or not refs:
            return 400, error(32200, "lineItems is required.", domain="API_FULFILLMENT")
        shipped = Counter()
        for existing in self.fulfillments[order_id]:
            for ref in existing["lineItems"]:
                shipped[ref["lineItemId"]] += ref["quantity"]
        for ref in refs:
            line = lines.get(str(ref.get("lineItemId")))
            quantity = ref.get("quantity", line["quantity"] if line else 0)
            if line is None:
                return 400, error(32210, f"Invalid line item ID: {ref.get('lineItemId')}",
                                  domain="API_FULFILLMENT")
            if not isinstance(quantity, int) or quantity < 1 or shipped[line["lineItemId"]] + quantity > line["quantity"]:
                return 409, error(32900, "The line item is already fully shipped.",
                                  domain="API_FULFILLMENT")
        if not details.get("trackingNumber") or not details.get("shippingCarrierCode"):
            return 400, error(32300, "trackingNumber and shippingCarrierCode are required.",
                              domain="API_FULFILLMENT")
        fulfillment_id = str(details["trackingNumber"])
        record = {"fulfillmentId": fulfillment_id,
                  "lineItems": [{"lineItemId": str(r["lineItemId"]),
                                 "quantity": r.get("quantity", lines[str(r["lineItemId"])]["quantity"])}
                                for r in refs],
                  "shipmentTrackingNumber": str(details["trackingNumber"]),
                  "shippingCarrierCode": str(details["shippingCarrierCode"]),
                  "shippedDate": str(details.get("shippedDate") or _iso(self.now()))}
        self.fulfillments[order_id].append(record)
        for ref in record["lineItems"]:
            shipped[ref["lineItemId"]] += ref["quantity"]
        for line in order["lineItems"]:
            done = shipped[line["lineItemId"]] >= line["quantity"]
            line["lineItemFulfillmentStatus"] = "FULFILLED" if done else (
                "IN_PROGRESS" if shipped[line["lineItemId"]] else "NOT_STARTED")
        statuses = {line["lineItemFulfillmentStatus"] for line in order["lineItems"]}
        order["orderFulfillmentStatus"] = "FULFILLED" if statuses == {"FULFILLED"} else "IN_PROGRESS"
        order["fulfillmentHrefs"].append(
            f"{self.base_url}/sell/fulfillment/v1/order/{order_id}/shipping_fulfillment/{fulfillment_id}")
        order["lastModifiedDate"] = _iso(self.now())
        return 201, record

    # --- revising offers ------------------------------------------------------------------------

    def revise(self, user_id: str, request: dict) -> list[dict]:
        """One PriceQuantity of bulkUpdatePriceQuantity → its PriceQuantityResponse(s)."""
        sku = request.get("sku")
        offers = request.get("offers") or []
        by_id = {o.offer_id: o for o in self.offers[user_id].values()}
        results = []
        ship_to = request.get("shipToLocationAvailability")
        item_offer = self.offers[user_id].get(sku) if sku else None
        if sku and item_offer is None:
            return [{"sku": sku, "statusCode": 404, "errors": [error(25702, f"SKU {sku} is not "
                     "available in the system.")["errors"][0]]}]
        for entry in offers:
            offer = by_id.get(str(entry.get("offerId")))
            if offer is None:
                results.append({"offerId": str(entry.get("offerId")), "sku": sku or "",
                                "statusCode": 404, "errors": [error(25713, "This Offer is not "
                                "available.")["errors"][0]]})
                continue
            results.append(self._revise_offer(offer, entry))
        if ship_to is not None and not offers and item_offer is not None:
            quantity = ship_to.get("quantity")
            if not isinstance(quantity, int) or quantity < 0:
                return [{"sku": sku, "statusCode": 400, "errors": [error(25709, "Invalid value "
                         "for quantity.")["errors"][0]]}]
            results.append(self._revise_offer(item_offer, {"availableQuantity": quantity},
                                              with_offer_id=False))
        return results

    def _revise_offer(self, offer: Offer, entry: dict, *, with_offer_id: bool = True) -> dict:
        base: dict[str, Any] = {"sku": offer.item.sku, "statusCode": 200}
        if with_offer_id:
            base["offerId"] = offer.offer_id
        quantity = entry.get("availableQuantity")
        price = entry.get("price")
        if quantity is not None and (isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0):
            return {**base, "statusCode": 400,
                    "errors": [error(25709, "Invalid value for availableQuantity.")["errors"][0]]}
        new_price = None
        if price is not None:
            try:
                new_price = Decimal(str(price["value"]))
                if price.get("currency") != offer.currency or new_price <= 0:
                    raise ValueError
            except Exception:  # noqa: BLE001 - any broken Amount is the same refusal
                return {**base, "statusCode": 400,
                        "errors": [error(25711, "Invalid price.")["errors"][0]]}
        changes = (quantity is not None and quantity != offer.available) or (
            new_price is not None and new_price != offer.price)
        if changes and offer.item.published:
            key = (offer.listing_id, self.day())
            if self.revisions[key] >= self.scenario.revision_limit:
                return {**base, "statusCode": 400, "errors": [error(
                    25099, f"Listing {offer.listing_id} has reached its limit of "
                           f"{self.scenario.revision_limit} revisions for today.")["errors"][0]]}
            self.revisions[key] += 1
        if quantity is not None:
            offer.available = quantity
        if new_price is not None:
            offer.price = new_price
        return base

    # --- rendering ------------------------------------------------------------------------------

    def render_offer(self, offer: Offer) -> dict:
        body: dict[str, Any] = {
            "offerId": offer.offer_id, "sku": offer.item.sku,
            "marketplaceId": offer.item.marketplace, "format": "FIXED_PRICE",
            "availableQuantity": offer.available,
            "pricingSummary": {"price": _amount(offer.price, offer.currency)},
            "status": "PUBLISHED" if offer.item.published else "UNPUBLISHED",
            "categoryId": "20625", "merchantLocationKey": "warehouse-1",
        }
        if offer.item.published:
            body["listing"] = {"listingId": offer.listing_id, "soldQuantity": offer.sold,
                               "listingStatus": "ACTIVE" if offer.available else "OUT_OF_STOCK",
                               "listingOnHold": False}
        return body

    def render_item(self, offer: Offer) -> dict:
        item = offer.item
        product: dict[str, Any] = {"title": item.title}
        if item.ean:
            product["ean"] = [item.ean]
        if item.upc:
            product["upc"] = [item.upc]
        if item.mpn:
            product["mpn"] = item.mpn
            product["brand"] = item.brand or "Unbranded"
        language = {"US": "en_US", "GB": "en_GB", "DE": "de_DE", "AU": "en_AU", "FR": "fr_FR",
                    "IT": "it_IT", "ES": "es_ES", "CA": "en_CA"}
        return {"sku": item.sku, "locale": language.get(MARKETPLACES[item.marketplace][1], "en_US"),
                "condition": "NEW", "product": product,
                "availability": {"shipToLocationAvailability": {"quantity": offer.available}}}


def _iso(moment: datetime) -> str:
    """eBay writes times as ISO 8601 UTC with milliseconds and ``Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _amount(value: Decimal, currency: str) -> dict[str, str]:
    return {"value": str(value.quantize(Decimal("0.01"))), "currency": currency}


def error(error_id: int, message: str, *, domain: str = "API_INVENTORY",
          category: str = "REQUEST", status_text: str | None = None) -> dict:
    """eBay's error body: ``{"errors": [{errorId, domain, category, message, ...}]}``."""
    body: dict[str, Any] = {"errorId": error_id, "domain": domain, "category": category,
                            "message": message}
    if status_text:
        body["longMessage"] = status_text
    return {"errors": [body]}
