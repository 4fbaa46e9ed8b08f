"""A minimal third-party channel plugin for marketsync, kept as a tested file.

"Shopfront" is an imaginary shop system with a JSON API:

- ``GET  /orders?updated_since=ISO&page=N`` → ``{"orders": [...], "next_page": N | null}``
- ``PUT  /stock`` with ``{"items": [{"sku": ..., "quantity": ...}]}`` → per-SKU results

Ship it as its own distribution with one entry point::

    [options.entry_points]
    marketsync =
        shopfront = marketsync_shopfront

and marketsync finds it at start-up. Everything the core needs to know about the channel
is in ``channel_info``; each hook does one step of HTTP and mapping and returns values —
the core stores them, schedules the jobs, governs the rate and does all stock arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from marketsync.core import clock, hookimpl
from marketsync.core.errors import IntegrationAuthFailed, RecordRejected
from marketsync.core.types import (
    AccountInfo,
    ChannelInfo,
    ChannelOrder,
    ChannelOrderItem,
    Cursor,
    Fulfillment,
    Integration,
    ItemResult,
    JobDefault,
    Marketplace,
    OrderStatus,
    Page,
    Priority,
    RejectedRecord,
    StockUpdate,
    Submission,
    UsagePlan,
)

STATUS = {"open": OrderStatus.NEW, "shipped": OrderStatus.SHIPPED, "cancelled": OrderStatus.CANCELED}
#: the channel publishes changes late; re-read this much before the last watermark
OVERLAP = timedelta(minutes=5)


@hookimpl
def channel_info() -> ChannelInfo:
    return ChannelInfo(
        name="shopfront",
        title="Shopfront (example plugin)",
        marketplaces={"WEB": Marketplace(code="WEB", id="web", name="Web shop", currency="EUR")},
        credential_keys={"api_key": "API key from Shopfront's settings page"},
        required_credentials=frozenset({"api_key"}),
        secret_credentials=frozenset({"api_key"}),
        jobs=(
            JobDefault(kind="import_orders", every=300, priority=Priority.ORDERS),
            JobDefault(kind="push_stock", every=60, priority=Priority.URGENT),
        ),
        usage_plans={
            "listOrders": UsagePlan(operation="listOrders", rate=2.0, burst=10),
            "putStock": UsagePlan(operation="putStock", rate=1.0, burst=5),
        },
    )


def _headers(integration: Integration) -> dict[str, str]:
    return {"authorization": f"Bearer {integration.credentials['api_key']}"}


@hookimpl
async def check_credentials(integration: Integration) -> AccountInfo:
    response = await integration.http.get("/orders", params={"page": 1},
                                          headers=_headers(integration),
                                          extensions={"operation": "listOrders"})
    if response.status_code in (401, 403):
        raise IntegrationAuthFailed("Shopfront refused the API key")
    response.raise_for_status()
    return AccountInfo(seller_id=None, marketplaces=("WEB",))


def _order(raw: dict) -> ChannelOrder:
    try:
        return ChannelOrder(
            channel_order_id=str(raw["id"]),
            marketplace="WEB",
            status=STATUS[raw["status"]],
            channel_status=raw["status"],
            fulfillment=Fulfillment.MFN,
            purchased_at=datetime.fromisoformat(raw["created"]),
            updated_at=datetime.fromisoformat(raw["updated"]),
            currency="EUR",
            items=tuple(
                ChannelOrderItem(channel_item_id=f"{raw['id']}-{n}", channel_sku=line["sku"],
                                 quantity=int(line["qty"]))
                for n, line in enumerate(raw["lines"])
            ),
        )
    except (KeyError, ValueError, TypeError) as error:
        raise RecordRejected(f"unreadable order: {error!r}", record_id=str(raw.get("id")))


@hookimpl
async def import_orders(integration: Integration, cursor: Cursor) -> Page[ChannelOrder]:
    started = clock.now()
    since = (cursor.since - OVERLAP) if cursor.since else started - timedelta(days=30)
    page_no = int(cursor.state.get("page", 1))
    response = await integration.http.get(
        "/orders", params={"updated_since": since.isoformat(), "page": page_no},
        headers=_headers(integration), extensions={"operation": "listOrders"})
    response.raise_for_status()
    body = response.json()
    orders, rejected = [], []
    for raw in body["orders"]:
        try:
            orders.append(_order(raw))
        except RecordRejected as error:
            rejected.append(RejectedRecord(record_id=error.record_id, reason=error.reason, raw=raw))
    if body.get("next_page"):
        next_cursor = Cursor(since=cursor.since, state={"page": body["next_page"],
                                                        "run_started": started.isoformat()})
        return Page(items=orders, next=next_cursor, done=False, rejected=rejected)
    # the watermark moves only when the whole range was read: to when this run started
    run_started = cursor.state.get("run_started")
    watermark = datetime.fromisoformat(run_started) if run_started else started
    return Page(items=orders, next=Cursor(since=watermark), done=True, rejected=rejected)


@hookimpl
async def push_stock(integration: Integration, updates: Sequence[StockUpdate]) -> Submission:
    response = await integration.http.put(
        "/stock", json={"items": [{"sku": u.channel_sku, "quantity": u.quantity} for u in updates]},
        headers=_headers(integration), extensions={"operation": "putStock"})
    response.raise_for_status()
    results = tuple(ItemResult(channel_sku=r["sku"], accepted=r["ok"], message=r.get("error"))
                    for r in response.json()["results"])
    return Submission(kind="stock", channel_id=response.headers.get("x-batch-id", "sync"),
                      channel_skus=tuple(u.channel_sku for u in updates),
                      submitted_at=clock.now(), poll_after=0, results=results)
