"""The all-orders report by last update: Amazon's columns, range, lag and limits, and the
same orders the Orders API shows."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
import pytest
import trio

from marketsync.core import clock

from .conftest import signed_in

SELLER, CLIENT = "A1ORDREPNA1", "amzn1.application-oa2-client.orderreport"
US, CA = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"
MODEL = "reports_2021-06-30.json"
REPORT = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
# Amazon's "Order Tracking reports attributes" page, in its order (REFERENCE.md §9)
COLUMNS = (
    "amazon-order-id merchant-order-id purchase-date last-updated-date order-status "
    "fulfillment-channel sales-channel order-channel ship-service-level product-name sku "
    "asin item-status quantity currency item-price item-tax shipping-price shipping-tax "
    "gift-wrap-price gift-wrap-tax item-promotion-discount ship-promotion-discount ship-city "
    "ship-state ship-postal-code ship-country promotion-ids is-business-order "
    "purchase-order-number price-designation").split()
SCENARIO = {
    "seed": 31,
    "history_days": 3,
    "applications": [{"client_id": CLIENT, "client_secret": "secret"}],
    "accounts": [{"seller_id": SELLER, "region": "NA", "marketplaces": ["US", "CA"]}],
    "catalog": [
        {"sku": "MUG", "asin": "B0OR000001", "title": "Mug, blue", "mfn_quantity": 10**6,
         "prices": {"US": "9.99", "CA": "12.99"}},
        {"sku": "SPORK", "asin": "B0OR000003", "title": "Spork", "fba_quantity": 10**6,
         "prices": {"US": "5.00", "CA": "6.50"}},
    ],
    "generator": {"orders_per_day": {"US": 60, "CA": 10}, "fba_share": 0.3,
                  "quantity_per_item": [1, 3], "cancel_by_buyer": 0.05,
                  "mfn_ship_hours": [2, 30]},
}


@pytest.fixture
async def sim():
    async with signed_in(SCENARIO, SELLER, CLIENT) as pair:
        yield pair


async def request(client: httpx.AsyncClient, start=None, end=None, *markets: str) -> str:
    body = {"reportType": REPORT, "marketplaceIds": list(markets or (US, CA))}
    if start is not None:
        body["dataStartTime"] = clock.isoformat(start)
    if end is not None:
        body["dataEndTime"] = clock.isoformat(end)
    answer = await client.post("/reports/2021-06-30/reports", json=body)
    assert answer.status_code == 202, answer.text
    return answer.json()["reportId"]


async def finished(client: httpx.AsyncClient, report_id: str) -> dict:
    await trio.sleep(120)
    return (await client.get(f"/reports/2021-06-30/reports/{report_id}")).json()


async def download(client: httpx.AsyncClient, report: dict, contract=None) -> str:
    meta = await client.get(f"/reports/2021-06-30/documents/{report['reportDocumentId']}")
    if contract:
        contract(meta, MODEL, "getReportDocument")
    answer = await client.get(meta.json()["url"])
    assert answer.headers["content-type"].startswith("text/tab-separated-values")
    return answer.text


def table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))


async def search_all(client: httpx.AsyncClient, after, before) -> dict[str, dict]:
    found, params = {}, {"marketplaceIds": f"{US},{CA}", "lastUpdatedAfter": clock.isoformat(after),
                         "lastUpdatedBefore": clock.isoformat(before),
                         "includedData": "FULFILLMENT,PROCEEDS,BUYER,RECIPIENT"}
    while True:
        page = (await client.get("/orders/2026-01-01/orders", params=params)).json()
        found.update({o["orderId"]: o for o in page["orders"]})
        token = (page.get("pagination") or {}).get("nextToken")
        if not token:
            return found
        params = {**params, "paginationToken": token}


async def test_the_report_has_amazons_columns_and_the_orders_the_api_shows(
        sim, autojump_clock, contract):
    world, client = sim
    now = clock.now()
    start, end = now - timedelta(days=3), now - timedelta(minutes=35)
    report = await finished(client, await request(client, start, end))
    assert report["processingStatus"] == "DONE", report
    text = await download(client, report, contract)
    assert text.splitlines()[0].split("\t") == COLUMNS
    rows = table(text)
    by_order: dict[str, list[dict]] = {}
    for row in rows:
        by_order.setdefault(row["amazon-order-id"], []).append(row)
    # the API's view now: an order changed since the report's moment is newer there
    api = await search_all(client, start, clock.now() - timedelta(minutes=2))
    assert len(by_order) > 150
    assert set(by_order) <= set(api), "every report order exists in the Orders API"
    statuses = {"PENDING": "Pending", "UNSHIPPED": "Unshipped", "SHIPPED": "Shipped",
                "CANCELLED": "Cancelled", "PARTIALLY_SHIPPED": "PartiallyShipped"}
    seen_statuses = set()
    for order_id, lines in by_order.items():
        order = api[order_id]
        first = lines[0]
        seen_statuses.add(first["order-status"])
        assert first["fulfillment-channel"] == (
            "Amazon" if order["fulfillment"]["fulfilledBy"] == "AMAZON" else "Merchant")
        assert first["sales-channel"] in ("Amazon.com", "Amazon.ca")
        assert first["purchase-date"] == order["createdTime"].replace("Z", "+00:00")
        assert {(r["sku"], int(r["quantity"])) for r in lines} == {
            (i["product"]["sellerSku"], i["quantityOrdered"]) for i in order["orderItems"]}
        if first["order-status"] != "Pending":
            total = sum(float(r["item-price"]) for r in lines)
            assert total == pytest.approx(float(order["proceeds"]["grandTotal"]["amount"]))
        else:
            assert all(r["item-price"] == "" for r in lines), "no price while pending"
        if order["lastUpdatedTime"] == first["last-updated-date"].replace("+00:00", "Z"):
            assert first["order-status"] == statuses[order["fulfillment"]["fulfillmentStatus"]]
    assert {"Shipped", "Unshipped", "Cancelled"} <= seen_statuses
    assert {r["fulfillment-channel"] for r in rows} == {"Amazon", "Merchant"}
    assert any(r["fulfillment-channel"] == "Merchant" and r["order-status"] == "Shipped"
               for r in rows), "mfn_ship_hours: the seller shipped some history by itself"
    # no buyer name, e-mail or street: the file has no column for them
    for order in world.orders.values():
        assert order.buyer["buyerName"] not in text
        assert order.buyer["buyerEmail"] not in text
        assert order.address["addressLine1"] not in text


async def test_the_range_is_by_last_update_and_lags_thirty_minutes(sim, autojump_clock):
    world, client = sim
    now = clock.now()
    report = await finished(client, await request(client, now - timedelta(hours=6)))
    rows = table(await download(client, report))
    cut = clock.isoformat(now + timedelta(seconds=90) - timedelta(minutes=30))
    updated = [r["last-updated-date"].replace("+00:00", "Z") for r in rows]
    assert updated and max(updated) <= cut, "nothing of the last 30 minutes"
    assert min(updated) >= clock.isoformat(now - timedelta(hours=6))
    old = {o.order_id for o in world.orders.values()
           if o.last_updated_at(now) < now - timedelta(hours=6)}
    assert old and not old & {r["amazon-order-id"] for r in rows}


async def test_more_than_thirty_days_ends_fatal_and_an_empty_range_cancelled(
        sim, autojump_clock):
    world, client = sim
    now = clock.now()
    too_long = await request(client, now - timedelta(days=31), now - timedelta(hours=1))
    empty = await request(client, now - timedelta(days=200), now - timedelta(days=199))
    assert (await finished(client, too_long))["processingStatus"] == "FATAL"
    report = (await client.get(f"/reports/2021-06-30/reports/{empty}")).json()
    assert report["processingStatus"] == "CANCELLED" and "reportDocumentId" not in report


async def test_malformed_orders_give_the_rows_amazon_has_been_seen_to_write(sim, autojump_clock):
    world, client = sim
    now = clock.now()
    victims = sorted((o for o in world.orders.values() if o.created < now - timedelta(hours=2)),
                     key=lambda o: o.order_id)[:3]
    for order, fault in zip(victims, ("ancient_date", "unknown_enum", "wrong_type")):
        order.malformed = fault
    report = await finished(client, await request(client, now - timedelta(days=3)))
    rows = {r["amazon-order-id"]: r for r in table(await download(client, report))}
    assert rows[victims[0].order_id]["purchase-date"].startswith("1995-")
    assert rows[victims[1].order_id]["order-status"] == "AwaitingSimulatedState"
    assert rows[victims[2].order_id]["quantity"].startswith("[")
