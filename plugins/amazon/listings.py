"""push_stock and push_prices: the listing patches, and whether they go one by one or as a feed.

A few SKUs go through ``patchListingsItem``: one call each, answered in a second, which is
what a sale that empties a shelf needs. Many SKUs go as one ``JSON_LISTINGS_FEED``
(``feeds.py``): one upload instead of hundreds of calls at 5 per second, but minutes of
processing. A SKU going to 0 always takes the fast path, even in a large push, because
it is the change that prevents an oversell.

Quantity is per seller and region, not per marketplace, so a stock push needs no
marketplace; a price is per marketplace. When a SKU's quantity and price are both due
they travel in the same message, as two patches.

Both APIs need the listing's real ``productType``; it is looked up once per SKU with
``searchListingsItems`` (20 SKUs a call, five calls in flight) and cached for the
account. The product import fills the cache right after each listings report, so the
first large push rarely has to wait for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from urllib.parse import quote

import trio

from marketsync.core import clock
from marketsync.core.types import (
    Integration,
    ItemResult,
    PriceUpdate,
    StockUpdate,
    Submission,
)
from marketsync.plugins.amazon import feeds, marketplaces
from marketsync.plugins.amazon.changes import Change
from marketsync.plugins.amazon.client import AmazonRequestError, SpApi, csv_param

ITEMS_PATH = "/listings/2021-08-01/items/{seller}"
#: More SKUs than this in one push go as a feed (``settings["patch_limit"]`` overrides).
#: Issue 4 suggested 20; a feed takes minutes to process, and 60 patches at the usage
#: plan's 5/s take 12 s, so up to 60 SKUs stay inside the 30-second target.
PATCH_LIMIT = 60
#: account_runtime key: per SKU, the quantity and handling time sent and accepted for the
#: account (quantity is per seller and region, shared by its marketplaces) and when
_STOCK_SENT = "amazon.stock_sent"
#: how long an accepted quantity lets the account's other marketplaces skip the same push
STOCK_SENT_TTL = 600.0
SEARCH_CHUNK = 20  #: searchListingsItems takes at most 20 identifiers
SEARCH_IN_FLIGHT = 5  #: lookups at once: the operation's burst, more would only queue
DEFAULT_PRODUCT_TYPE = "PRODUCT"
_PRODUCT_TYPES = "amazon.product_types"
#: how long a learnt productType is kept in the account's plugin state (the database):
#: a restart then does not ask again for every SKU (500 lookups per 10,000), and a type
#: the seller changed on Amazon is learnt again within this time at the latest
PRODUCT_TYPE_DAYS = 30
STATE_KEY_LIMIT = 200  #: the plugin state's longest key (a longer SKU stays in memory only)
_NO_SEARCH = "amazon.no_search_listings"


def stock_changes(integration: Integration, updates: Sequence[StockUpdate]) -> list[Change]:
    default_days = integration.settings.get("handling_time_days")
    own = marketplaces.MARKETPLACES[integration.marketplace].id
    changes = []
    for update in updates:
        days = update.handling_time_days
        change = Change(sku=update.channel_sku, quantity=update.quantity,
                        handling_time_days=days if days is not None else default_days)
        if update.price is not None:
            change.prices[own] = update.price
        changes.append(change)
    return changes


def price_changes(integration: Integration, updates: Sequence[PriceUpdate]) -> list[Change]:
    by_sku: dict[str, Change] = {}
    for update in updates:
        code = update.marketplace or integration.marketplace
        marketplace = marketplaces.MARKETPLACES.get(code)
        if marketplace is None:
            raise ValueError(f"price update for {update.channel_sku}: {code!r} is not an "
                             f"Amazon marketplace")
        change = by_sku.setdefault(update.channel_sku, Change(sku=update.channel_sku))
        change.prices[marketplace.id] = update.price
    return list(by_sku.values())


async def push_stock(integration: Integration, updates: Sequence[StockUpdate]) -> Submission:
    """Quantity is per seller and region, not per marketplace: an update another
    marketplace of the account already sent and had accepted is not sent again."""
    sent = integration.account_runtime.setdefault(_STOCK_SENT, {})
    now = clock.monotonic()
    known, todo = [], []
    for update in updates:
        entry = sent.get(update.channel_sku)
        if (update.price is None and entry is not None and now - entry[2] < STOCK_SENT_TTL
                and entry[:2] == (update.quantity, update.handling_time_days)):
            known.append(ItemResult(channel_sku=update.channel_sku, accepted=True,
                                    message="already sent for this account"))
        else:
            todo.append(update)
    if not todo:
        return Submission(kind="stock", channel_id=f"shared-{clock.timestamp():.6f}",
                          channel_skus=tuple(r.channel_sku for r in known),
                          submitted_at=clock.now(), poll_after=0, results=tuple(known))
    for update in todo:  # what Amazon holds is about to change: the old entry is stale
        sent.pop(update.channel_sku, None)
    submission = await push(integration, "stock", stock_changes(integration, todo))
    values = {u.channel_sku: (u.quantity, u.handling_time_days) for u in todo}
    for result in submission.results:  # patches: Amazon's answer is known now
        if result.accepted and result.channel_sku in values:
            sent[result.channel_sku] = (*values[result.channel_sku], now)
    if not known:
        return submission
    skus = (*submission.channel_skus, *(r.channel_sku for r in known))
    results = (*submission.results, *known)
    state = dict(submission.state)
    if "patched" in state:  # a feed: results given now ride into its final report
        state["patched"] = [*state["patched"], *([r.channel_sku, True, r.message] for r in known)]
    return Submission(kind=submission.kind, channel_id=submission.channel_id,
                      channel_skus=skus, submitted_at=submission.submitted_at,
                      poll_after=submission.poll_after, state=state, results=results)


async def push_prices(integration: Integration, updates: Sequence[PriceUpdate]) -> Submission:
    return await push(integration, "prices", price_changes(integration, updates))


async def push(integration: Integration, kind: str, changes: list[Change]) -> Submission:
    """Patch few (and every SKU going to 0) at once; send the rest as one feed."""
    api = SpApi(integration)
    limit = int(integration.settings.get("patch_limit") or PATCH_LIMIT)
    if len(changes) <= limit:
        fast, bulk = changes, []
    else:
        fast = [c for c in changes if c.quantity == 0]
        bulk = [c for c in changes if c.quantity != 0]
    types = await product_types(api, [c.sku for c in changes])
    results = await patch_all(api, fast, types)
    now = clock.now()
    skus = tuple(c.sku for c in changes)
    if not bulk:
        return Submission(kind=kind, channel_id=f"patch-{clock.timestamp():.6f}",
                          channel_skus=skus, submitted_at=now, poll_after=0,
                          results=tuple(results))
    feed_id, state = await feeds.submit_listings_feed(api, bulk, types)
    # the core applies results given with a submission only when it needs no polling, so
    # the patched SKUs' results also ride in the state, into the feed's final report
    state["patched"] = [[r.channel_sku, r.accepted, r.message] for r in results]
    return Submission(kind=kind, channel_id=feed_id, channel_skus=skus, submitted_at=now,
                      poll_after=feeds.FIRST_POLL, state=state, results=tuple(results))


async def patch_all(api: SpApi, changes: Sequence[Change],
                    types: dict[str, str]) -> list[ItemResult]:
    results: dict[str, ItemResult] = {}

    async def one(change: Change) -> None:
        results[change.sku] = await patch_one(api, change, types.get(change.sku,
                                                                     DEFAULT_PRODUCT_TYPE))

    async with trio.open_nursery() as nursery:
        for change in changes:
            nursery.start_soon(one, change)
    return [results[c.sku] for c in changes]


async def patch_one(api: SpApi, change: Change, product_type: str) -> ItemResult:
    """One ``patchListingsItem``; ACCEPTED means queued by Amazon, which is all it tells."""
    path = f"{ITEMS_PATH.format(seller=quote(api.seller_id, safe=''))}/{quote(change.sku, safe='')}"
    marketplace_ids = change.marketplace_ids or [api.marketplace_id]
    body = {"productType": product_type, "patches": change.patches()}
    try:
        answer = await api.send_json(
            "PATCH", path, "patchListingsItem",
            params={"marketplaceIds": csv_param(marketplace_ids)}, json=body,
        )
    except AmazonRequestError as exc:
        if exc.status in (400, 404, 413):
            return ItemResult(channel_sku=change.sku, accepted=False, message=exc.detail or
                              f"HTTP {exc.status}")
        raise
    status = answer.get("status")
    errors = [i for i in answer.get("issues") or () if i.get("severity") == "ERROR"]
    if status == "ACCEPTED" and not errors:
        return ItemResult(channel_sku=change.sku, accepted=True)
    message = "; ".join(f"{i.get('code', '')}: {i.get('message', '')}" for i in errors)
    return ItemResult(channel_sku=change.sku, accepted=False,
                      message=message or f"patchListingsItem answered {status}")


def _type_key(sku: str) -> str:
    return f"product_type/{sku}"


async def product_types(api: SpApi, skus: Iterable[str]) -> dict[str, str]:
    """The listing's productType per SKU (Amazon refuses a patch naming another one).

    Up to ``SEARCH_IN_FLIGHT`` lookups run at once: one at a time, a 10,000-SKU first push
    waited for 500 round trips in a row; several in flight let the governor, not the
    latency, set the pace.
    """
    cache: dict[str, str] = api.integration.account_runtime.setdefault(_PRODUCT_TYPES, {})
    skus = list(skus)
    missing = sorted({s for s in skus if s not in cache})
    if missing:  # learnt before a restart: kept in the account's plugin state
        stored = await api.integration.account_state.get(
            [_type_key(s) for s in missing if len(_type_key(s)) <= STATE_KEY_LIMIT])
        for sku in missing:
            if isinstance(stored.get(_type_key(sku)), str):
                cache[sku] = stored[_type_key(sku)]
        missing = [s for s in missing if s not in cache]
    if api.integration.account_runtime.get(_NO_SEARCH):
        missing = []
    path = ITEMS_PATH.format(seller=quote(api.seller_id, safe=""))
    limiter = trio.CapacityLimiter(SEARCH_IN_FLIGHT)
    failed: list[AmazonRequestError] = []  #: Amazon refused: fall back to the default
    broken: list[Exception] = []  #: anything else (5xx after retries): the push fails

    async def look_up(chunk: list[str], cancel: trio.CancelScope) -> None:
        async with limiter:
            if failed:  # one refusal says enough: the rest would be refused the same way
                return
            try:
                body = await api.get_json(path, "searchListingsItems", params={
                    "marketplaceIds": api.marketplace_id, "identifiers": csv_param(chunk),
                    "identifiersType": "SKU", "includedData": "summaries",
                    "pageSize": SEARCH_CHUNK,
                })
            except AmazonRequestError as exc:
                failed.append(exc)
                return
            except Exception as exc:  # noqa: BLE001 - re-raised below, as itself
                broken.append(exc)
                cancel.cancel()
                return
        for item in body.get("items") or ():
            summaries = item.get("summaries") or ()
            kind = next((s.get("productType") for s in summaries if s.get("productType")), None)
            if item.get("sku") and kind:
                cache[item["sku"]] = kind

    async with trio.open_nursery() as nursery:
        for start in range(0, len(missing), SEARCH_CHUNK):
            nursery.start_soon(look_up, missing[start:start + SEARCH_CHUNK], nursery.cancel_scope)
    learnt = {_type_key(sku): cache[sku] for sku in missing
              if sku in cache and len(_type_key(sku)) <= STATE_KEY_LIMIT}
    if learnt:
        await api.integration.account_state.put(
            learnt, expires_at=clock.now() + timedelta(days=PRODUCT_TYPE_DAYS))
    if broken:  # raised bare, not in an exception group: the job's error handling sees it
        raise broken[0]
    if failed:
        api.log.warning("searchListingsItems failed (%s); assuming productType %s",
                        failed[0], DEFAULT_PRODUCT_TYPE)
        if any(exc.status == 404 for exc in failed):  # no such endpoint (a simulator)
            api.integration.account_runtime[_NO_SEARCH] = True
    return {sku: cache.get(sku, DEFAULT_PRODUCT_TYPE) for sku in skus}
