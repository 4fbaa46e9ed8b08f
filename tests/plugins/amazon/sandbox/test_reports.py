"""Reports API in the simulator: lifecycle, real column names, CANCELLED when empty."""

from __future__ import annotations

import csv
import io

import httpx
import pytest
import trio

from .conftest import signed_in

SELLER, CLIENT = "A1REPORTSNA1", "amzn1.application-oa2-client.reportstest"
US, CA = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"
MODEL = "reports_2021-06-30.json"
LISTINGS, FBA = "GET_MERCHANT_LISTINGS_ALL_DATA", "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"
SCENARIO = {
    "seed": 8,
    "applications": [{"client_id": CLIENT, "client_secret": "secret"}],
    "accounts": [{"seller_id": SELLER, "region": "NA", "marketplaces": ["US", "CA"]}],
    "catalog": [
        {"sku": "MUG", "asin": "B0RP000001", "title": "Mug, blue", "mfn_quantity": 5,
         "ean": "4006381333931", "prices": {"US": "9.99", "CA": "12.99"}},
        {"sku": "EMPTY", "asin": "B0RP000002", "title": "Lamp", "mfn_quantity": 0,
         "prices": {"US": "20.00"}},
        {"sku": "SPORK", "asin": "B0RP000003", "title": "Spork", "fba_quantity": 40,
         "prices": {"US": "5.00"}},
    ],
}
# REFERENCE.md §9, in the order of real files
LISTINGS_COLUMNS = (
    "item-name item-description listing-id seller-sku price quantity open-date image-url "
    "item-is-marketplace product-id-type zshop-shipping-fee item-note item-condition "
    "zshop-category1 zshop-browse-path zshop-storefront-feature asin1 asin2 asin3 "
    "will-ship-internationally expedited-shipping zshop-boldface product-id "
    "bid-for-featured-placement add-delete pending-quantity fulfillment-channel "
    "merchant-shipping-group status").split()
FBA_COLUMNS = (
    "sku fnsku asin product-name condition your-price mfn-listing-exists "
    "mfn-fulfillable-quantity afn-listing-exists afn-warehouse-quantity "
    "afn-fulfillable-quantity afn-unsellable-quantity afn-reserved-quantity afn-total-quantity "
    "per-unit-volume afn-inbound-working-quantity afn-inbound-shipped-quantity "
    "afn-inbound-receiving-quantity afn-researching-quantity afn-reserved-future-supply "
    "afn-future-supply-buyable").split()


@pytest.fixture
async def sim():
    async with signed_in(SCENARIO, SELLER, CLIENT) as pair:
        yield pair


async def create(client: httpx.AsyncClient, report_type: str, *marketplaces: str) -> str:
    answer = await client.post("/reports/2021-06-30/reports", json={
        "reportType": report_type, "marketplaceIds": list(marketplaces or (US,))})
    assert answer.status_code == 202, answer.text
    return answer.json()["reportId"]


async def fetch(client: httpx.AsyncClient, report_id: str) -> dict:
    answer = await client.get(f"/reports/2021-06-30/reports/{report_id}")
    assert answer.status_code == 200
    return answer.json()


async def rows(client: httpx.AsyncClient, report: dict, contract=None) -> list[dict]:
    meta = await client.get(f"/reports/2021-06-30/documents/{report['reportDocumentId']}")
    if contract:
        contract(meta, MODEL, "getReportDocument")
    download = await client.get(meta.json()["url"])
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/tab-separated-values")
    reader = csv.DictReader(io.StringIO(download.text), delimiter="\t")
    return list(reader)


async def test_listings_report_lifecycle_and_columns(sim, autojump_clock, contract):
    world, client = sim
    answer = await client.post("/reports/2021-06-30/reports", json={
        "reportType": LISTINGS, "marketplaceIds": [US]})
    contract(answer, MODEL, "createReport")
    report_id = answer.json()["reportId"]
    queued = await client.get(f"/reports/2021-06-30/reports/{report_id}")
    contract(queued, MODEL, "getReport")
    assert queued.json()["processingStatus"] == "IN_QUEUE"
    await trio.sleep(40)
    assert (await fetch(client, report_id))["processingStatus"] == "IN_PROGRESS"
    await trio.sleep(60)
    done = await fetch(client, report_id)
    assert done["processingStatus"] == "DONE" and done["reportDocumentId"]
    found = await rows(client, done, contract)
    download = await client.get((await client.get(
        f"/reports/2021-06-30/documents/{done['reportDocumentId']}")).json()["url"])
    assert download.text.splitlines()[0].split("\t") == LISTINGS_COLUMNS
    by_sku = {r["seller-sku"]: r for r in found}
    assert set(by_sku) == {"MUG", "EMPTY", "SPORK"}
    assert by_sku["MUG"]["price"] == "9.99" and by_sku["MUG"]["quantity"] == "5"
    assert by_sku["MUG"]["asin1"] == "B0RP000001" and by_sku["MUG"]["status"] == "Active"
    assert by_sku["MUG"]["fulfillment-channel"] == "DEFAULT"
    assert (by_sku["MUG"]["product-id-type"], by_sku["MUG"]["product-id"]) == (
        "4", "4006381333931"), "listed by EAN"
    assert (by_sku["EMPTY"]["product-id-type"], by_sku["EMPTY"]["product-id"]) == (
        "1", "B0RP000002"), "listed by ASIN"
    assert by_sku["EMPTY"]["status"] == "Inactive"
    assert by_sku["SPORK"]["fulfillment-channel"] == "AMAZON_NA"
    assert by_sku["SPORK"]["quantity"] == ""


async def test_report_reflects_the_catalog_when_it_is_generated(sim, autojump_clock):
    world, client = sim
    report_id = await create(client, LISTINGS, CA)
    world.catalog.channel_edit(SELLER, "MUG", quantity=2)
    world.catalog.rename_sku(SELLER, "MUG", "MUG-NEW")
    await trio.sleep(120)
    found = await rows(client, await fetch(client, report_id))
    assert [(r["seller-sku"], r["quantity"], r["price"]) for r in found] == [
        ("MUG-NEW", "2", "12.99")]


async def test_fba_inventory_report_columns(sim, autojump_clock):
    world, client = sim
    report_id = await create(client, FBA)
    await trio.sleep(120)
    download = await client.get((await client.get(
        f"/reports/2021-06-30/documents/{(await fetch(client, report_id))['reportDocumentId']}"
    )).json()["url"])
    lines = download.text.splitlines()
    assert lines[0].split("\t") == FBA_COLUMNS
    row = dict(zip(FBA_COLUMNS, lines[1].split("\t")))
    assert row["sku"] == "SPORK" and row["afn-fulfillable-quantity"] == "40"
    assert row["afn-listing-exists"] == "Yes" and row["mfn-listing-exists"] == "No"
    assert len(lines) == 2, "merchant-fulfilled SKUs are not in the FBA report"


async def test_report_without_data_ends_cancelled_without_document(sim, autojump_clock,
                                                                   contract):
    """No FBA SKU in CA: CANCELLED, which the client must read as "empty"."""
    world, client = sim
    report_id = await create(client, FBA, CA)
    await trio.sleep(120)
    answer = await client.get(f"/reports/2021-06-30/reports/{report_id}")
    contract(answer, MODEL, "getReport")
    assert answer.json()["processingStatus"] == "CANCELLED"
    assert "reportDocumentId" not in answer.json()


async def test_unsimulated_report_type_ends_fatal(sim, autojump_clock):
    world, client = sim
    report_id = await create(client, "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE")
    await trio.sleep(120)
    assert (await fetch(client, report_id))["processingStatus"] == "FATAL"


async def test_cancel_report_while_queued(sim, autojump_clock, contract):
    world, client = sim
    report_id = await create(client, LISTINGS)
    cancelled = await client.delete(f"/reports/2021-06-30/reports/{report_id}")
    contract(cancelled, MODEL, "cancelReport")
    await trio.sleep(120)
    assert (await fetch(client, report_id))["processingStatus"] == "CANCELLED"
    late = await client.delete(f"/reports/2021-06-30/reports/{report_id}")
    assert late.status_code == 400
    contract(late, MODEL, "cancelReport")


async def test_get_reports_filters_and_pages(sim, autojump_clock, contract):
    world, client = sim
    ids = [await create(client, LISTINGS) for _ in range(3)]
    await create(client, FBA)
    page = await client.get("/reports/2021-06-30/reports",
                            params={"reportTypes": LISTINGS, "pageSize": "2"})
    contract(page, MODEL, "getReports")
    assert len(page.json()["reports"]) == 2
    rest = await client.get("/reports/2021-06-30/reports",
                            params={"nextToken": page.json()["nextToken"]})
    contract(rest, MODEL, "getReports")
    seen = [r["reportId"] for r in page.json()["reports"] + rest.json()["reports"]]
    assert sorted(seen) == sorted(ids)
    await trio.sleep(120)
    done = await client.get("/reports/2021-06-30/reports", params={
        "reportTypes": f"{LISTINGS},{FBA}", "processingStatuses": "DONE"})
    assert len(done.json()["reports"]) == 4
    bad = await client.get("/reports/2021-06-30/reports", params={"reportTypes": LISTINGS,
                                                                  "createdSince": "yesterday"})
    assert bad.status_code == 400
    contract(bad, MODEL, "getReports")


async def test_create_report_validates_its_input(sim, contract):
    world, client = sim
    for body in ({"marketplaceIds": [US]}, {"reportType": LISTINGS},
                 {"reportType": LISTINGS, "marketplaceIds": ["A1PA6795UKMFR9"]},
                 {"reportType": LISTINGS, "marketplaceIds": [US],
                  "dataStartTime": "2026-03-02T00:00:00Z", "dataEndTime": "2026-03-01T00:00:00Z"}):
        answer = await client.post("/reports/2021-06-30/reports", json=body)
        assert answer.status_code == 400, body
        contract(answer, MODEL, "createReport")
    missing = await client.get("/reports/2021-06-30/reports/999")
    assert missing.status_code == 404
    contract(missing, MODEL, "getReport")
    no_document = await client.get("/reports/2021-06-30/documents/amzn1.spdoc.nothing")
    assert no_document.status_code == 404
    contract(no_document, MODEL, "getReportDocument")


async def test_report_document_url_expires(sim, autojump_clock):
    world, client = sim
    report_id = await create(client, LISTINGS)
    await trio.sleep(120)
    report = await fetch(client, report_id)
    meta = await client.get(f"/reports/2021-06-30/documents/{report['reportDocumentId']}")
    await trio.sleep(5 * 60 + 1)
    late = await client.get(meta.json()["url"])
    assert late.status_code == 403 and "expired" in late.text
