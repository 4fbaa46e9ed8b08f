"""What the eBay plugin tells the core about itself (``channel_info``).

One integration per eBay marketplace (the ``X-EBAY-C-MARKETPLACE-ID`` values); the
integrations of one account share its OAuth user token. eBay limits calls per
*application* and API per day, so a bucket is (channel, client id, API) and its plan
carries a :class:`~marketsync.core.types.DailyQuota`; eBay publishes no per-second rate,
so the rate here is our own politeness pacing, not a channel limit.
"""

from __future__ import annotations

from datetime import time
from types import MappingProxyType

from marketsync.core.types import (
    ChannelInfo,
    DailyQuota,
    Integration,
    JobDefault,
    Marketplace,
    Priority,
    UsagePlan,
)

CHANNEL = "ebay"
#: eBay's quota day, and its per-listing revision day, end at midnight Pacific time
#: (a third-party article; the live ``reset`` of getRateLimits corrects it when it differs).
DAY_ZONE = "America/Los_Angeles"

#: code -> (marketplace id, name, currency)
_MARKETS = {
    "US": ("EBAY_US", "eBay United States", "USD"), "GB": ("EBAY_GB", "eBay UK", "GBP"),
    "DE": ("EBAY_DE", "eBay Germany", "EUR"), "AU": ("EBAY_AU", "eBay Australia", "AUD"),
    "FR": ("EBAY_FR", "eBay France", "EUR"), "IT": ("EBAY_IT", "eBay Italy", "EUR"),
    "ES": ("EBAY_ES", "eBay Spain", "EUR"), "CA": ("EBAY_CA", "eBay Canada", "CAD"),
    "AT": ("EBAY_AT", "eBay Austria", "EUR"), "BE": ("EBAY_BE", "eBay Belgium", "EUR"),
    "CH": ("EBAY_CH", "eBay Switzerland", "CHF"), "IE": ("EBAY_IE", "eBay Ireland", "EUR"),
    "NL": ("EBAY_NL", "eBay Netherlands", "EUR"), "PL": ("EBAY_PL", "eBay Poland", "PLN"),
}
MARKETPLACES = MappingProxyType({
    code: Marketplace(code=code, id=mid, name=name, region="", currency=currency)
    for code, (mid, name, currency) in _MARKETS.items()})
BY_ID = MappingProxyType({m.id: m for m in MARKETPLACES.values()})

#: Daily call limits per application after eBay's Application Growth Check, as we read
#: eBay's call-limits page (the Inventory and Fulfillment rows are unverified in the
#: sources research read; a new application has 5,000 a day until the check). The live
#: figures of getRateLimits, read at every credentials check, replace these.
QUOTAS = {"sell.inventory": 2_000_000, "sell.fulfillment": 100_000,
          "commerce.identity": 5_000, "developer.analytics": 5_000}

#: operation -> the API whose quota it draws on
API_OF = {
    "getOrders": "sell.fulfillment", "getOrder": "sell.fulfillment",
    "createShippingFulfillment": "sell.fulfillment",
    "getShippingFulfillments": "sell.fulfillment",
    "getInventoryItems": "sell.inventory", "getOffers": "sell.inventory",
    "bulkUpdatePriceQuantity": "sell.inventory",
    "getUser": "commerce.identity", "getRateLimits": "developer.analytics",
}
#: our pacing, not eBay's: a burst for a page of pushes, then five calls a second
PACING_RATE, PACING_BURST = 5.0, 25


def usage_plans(quotas: dict[str, int] | None = None) -> dict[str, UsagePlan]:
    quotas = {**QUOTAS, **(quotas or {})}
    return {op: UsagePlan(operation=op, rate=PACING_RATE, burst=PACING_BURST,
                          daily=DailyQuota(limit=quotas[api], resets_at=time(0),
                                           timezone=DAY_ZONE, reserve=0.1))
            for op, api in API_OF.items()}


CREDENTIAL_KEYS = MappingProxyType({
    "client_id": "the application's App ID (client id) from the eBay developer portal",
    "client_secret": "the application's Cert ID (client secret) (secret)",
    "ru_name": "the application's RuName (eBay Redirect URL name), for connect",
    "refresh_token": "the seller's OAuth refresh token (secret; 18 months); "
                     "written by `marketsync connect`",
    "user_id": "the seller's eBay user id; written by the credentials check",
})

JOBS = (
    # every minute: a sale on eBay must reach the other channels within P1 (90 s). One
    # getOrders answers for every site of the seller, so the job runs once per account:
    # 1,440 calls a day per account (not per site) against sell.fulfillment's quota
    JobDefault(kind="import_orders", every=60, priority=Priority.ORDERS, timeout=600,
               scope="account"),
    JobDefault(kind="import_products", every=3600, priority=Priority.PRODUCTS, timeout=1800),
    JobDefault(kind="push_stock", every=60, priority=Priority.URGENT, timeout=300),
    JobDefault(kind="push_prices", every=120, priority=Priority.URGENT, timeout=300),
    JobDefault(kind="confirm_shipment", every=120, priority=Priority.URGENT, timeout=300),
)


def bucket_key(integration: Integration, operation: str) -> tuple:
    """eBay counts calls per application and API: every account and marketplace using the
    same client id shares one quota per API."""
    client = integration.credentials.get("client_id") or integration.account
    return (CHANNEL, client, API_OF.get(operation, operation))


INFO = ChannelInfo(
    name=CHANNEL,
    title="eBay (Sell Inventory and Fulfillment APIs)",
    marketplaces=MARKETPLACES,
    credential_keys=CREDENTIAL_KEYS,
    required_credentials=frozenset({"client_id", "client_secret"}),
    secret_credentials=frozenset({"client_secret", "refresh_token"}),
    jobs=JOBS,
    usage_plans=MappingProxyType(usage_plans()),
    bucket_key=bucket_key,
    rate_limit_header=None,
    extra=MappingProxyType({"day_zone": DAY_ZONE}),
)
