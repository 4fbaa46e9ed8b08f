"""Feeds API in the simulator: documents, lifecycle, faults, limits and result documents."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

import httpx
import jsonschema
import pytest
import trio

from marketsync.plugins.amazon.sandbox import listings_feed as listings_feed_module

from .conftest import signed_in

SELLER, CLIENT = "A2CATALOGEU01", "amzn1.application-oa2-client.catalogtest"
DE, FR, UK = "A1PA6795UKMFR9", "A13V1IB3VIYZZH", "A1F83G8C2ARO7P"
JSON_TYPE = "application/json; charset=UTF-8"
SCENARIO = {
    "seed": 42,
    "applications": [{"client_id": CLIENT, "client_secret": "secret"}],
    "accounts": [{"seller_id": SELLER, "region": "EU", "marketplaces": ["DE", "FR", "UK"]}],
    "catalog": [
        {"sku": "MUG", "asin": "B0CAT00001", "title": "Mug", "mfn_quantity": 5,
         "handling_time": 1, "prices": {"DE": "9.99", "FR": "10.49"}},
        {"sku": "POT", "asin": "B0CAT00002", "title": "Pot", "mfn_quantity": 3,
         "prices": {"DE": "19.00"}},
        {"sku": "SPORK", "asin": "B0CAT00003", "title": "Spork", "fba_quantity": 40,
         "prices": {"DE": "5.00"}},
    ],
}


@pytest.fixture
async def sim():
    async with signed_in(SCENARIO, SELLER, CLIENT) as pair:
        yield pair


def listings_feed(*messages: dict, seller: str = SELLER, **header) -> bytes:
    return json.dumps({"header": {"sellerId": seller, "version": "2.0", **header},
                       "messages": list(messages)}).encode()


def quantity_patch(message_id: int, sku: str, quantity, op: str = "merge", **extra) -> dict:
    return {"messageId": message_id, "sku": sku, "operationType": "PATCH",
            "productType": "PRODUCT",
            "patches": [{"op": op, "path": "/attributes/fulfillment_availability",
                         "value": [{"fulfillment_channel_code": "DEFAULT",
                                    "quantity": quantity, **extra}]}]}


async def upload(client: httpx.AsyncClient, content: bytes, content_type: str = JSON_TYPE) -> str:
    created = await client.post("/feeds/2021-06-30/documents", json={"contentType": content_type})
    assert created.status_code == 201
    put = await client.put(created.json()["url"], content=content,
                           headers={"content-type": content_type})
    assert put.status_code == 200, put.text
    return created.json()["feedDocumentId"]


async def submit(client: httpx.AsyncClient, content: bytes, feed_type: str = "JSON_LISTINGS_FEED",
                 marketplaces: tuple[str, ...] = (DE,)) -> str:
    document_id = await upload(client, content)
    answer = await client.post("/feeds/2021-06-30/feeds", json={
        "feedType": feed_type, "marketplaceIds": list(marketplaces),
        "inputFeedDocumentId": document_id})
    assert answer.status_code == 202, answer.text
    return answer.json()["feedId"]


async def feed_status(client: httpx.AsyncClient, feed_id: str) -> dict:
    answer = await client.get(f"/feeds/2021-06-30/feeds/{feed_id}")
    assert answer.status_code == 200
    return answer.json()


async def result_report(client: httpx.AsyncClient, feed: dict) -> dict:
    """Download, gunzip and check the processing report against the official schema."""
    meta = await client.get(f"/feeds/2021-06-30/documents/{feed['resultFeedDocumentId']}")
    assert meta.status_code == 200
    assert meta.json()["compressionAlgorithm"] == "GZIP"
    download = await client.get(meta.json()["url"])
    assert download.status_code == 200
    report = json.loads(gzip.decompress(download.content))
    # the shipped copy, which test_listings_feed proves identical to the official schema
    jsonschema.Draft7Validator(listings_feed_module.schema(listings_feed_module.REPORT_SCHEMA)
                               ).validate(report)
    return report


async def test_feed_moves_from_queue_through_progress_to_done(sim, autojump_clock):
    """A feed is IN_QUEUE, then IN_PROGRESS, then DONE with a result document."""
    world, client = sim
    feed_id = await submit(client, listings_feed(quantity_patch(1, "MUG", 7)))
    assert (await feed_status(client, feed_id))["processingStatus"] == "IN_QUEUE"
    await trio.sleep(45)
    running = await feed_status(client, feed_id)
    assert running["processingStatus"] == "IN_PROGRESS"
    assert "processingStartTime" in running and "resultFeedDocumentId" not in running
    assert world.catalog.get(SELLER, "MUG").quantity == 5, "not applied before DONE"
    await trio.sleep(150)
    done = await feed_status(client, feed_id)
    assert done["processingStatus"] == "DONE"
    assert done["processingEndTime"] > done["processingStartTime"] > done["createdTime"]
    report = await result_report(client, done)
    assert report["summary"]["messagesAccepted"] == 1 and report["issues"] == []
    assert world.catalog.get(SELLER, "MUG").quantity == 7


async def test_processing_delay_is_configurable(sim, autojump_clock):
    """CatalogTiming sets how long processing takes."""
    world, client = sim
    world.catalog.timing.feed_queue = world.catalog.timing.feed_processing = timedelta(seconds=1)
    feed_id = await submit(client, listings_feed(quantity_patch(1, "MUG", 2)))
    await trio.sleep(3)
    assert (await feed_status(client, feed_id))["processingStatus"] == "DONE"


async def test_feed_with_some_failing_skus_reports_them_and_applies_the_rest(sim, autojump_clock):
    """An unknown SKU and a bad quantity are issues per messageId; valid messages apply."""
    world, client = sim
    feed_id = await submit(client, listings_feed(
        quantity_patch(1, "MUG", 11),
        quantity_patch(2, "NO-SUCH-SKU", 4),
        quantity_patch(3, "POT", -1),
        quantity_patch(4, "SPORK", 9)))
    await trio.sleep(300)
    feed = await feed_status(client, feed_id)
    assert feed["processingStatus"] == "DONE"
    report = await result_report(client, feed)
    failed = {i["messageId"]: i for i in report["issues"] if i["severity"] == "ERROR"}
    assert sorted(failed) == [2, 3, 4]
    assert failed[2]["sku"] == "NO-SUCH-SKU" and failed[2]["code"] == "99003"
    assert failed[3]["attributeName"] == "fulfillment_availability"
    assert failed[4]["code"] == "99007", "an FBA SKU's quantity is Amazon's"
    assert report["summary"] == {"errors": 3, "warnings": 0, "messagesProcessed": 4,
                                 "messagesAccepted": 1, "messagesInvalid": 3}
    assert world.catalog.get(SELLER, "MUG").quantity == 11
    assert world.catalog.get(SELLER, "POT").quantity == 3


async def test_stuck_feed_stays_in_progress_until_the_fault_is_lifted(sim, autojump_clock):
    """faults.stuck_feeds keeps a feed IN_PROGRESS forever; lifting it lets it finish."""
    world, client = sim
    feed_id = await submit(client, listings_feed(quantity_patch(1, "MUG", 1)))
    world.faults.stuck_feeds = {feed_id}
    await trio.sleep(6 * 3600)       # the fixture's access token expired meanwhile
    token, _ = world.issue_access_token(SELLER, CLIENT, world.now())
    client.headers["x-amz-access-token"] = token
    assert (await feed_status(client, feed_id))["processingStatus"] == "IN_PROGRESS"
    world.faults.stuck_feeds = False
    await trio.sleep(1)
    assert (await feed_status(client, feed_id))["processingStatus"] == "DONE"


async def test_fatal_feed_on_demand_has_a_report_and_applies_nothing(sim, autojump_clock):
    """faults.fatal_feeds=True ends feeds FATAL; the report explains, the catalog is unchanged."""
    world, client = sim
    world.faults.fatal_feeds = True
    feed_id = await submit(client, listings_feed(quantity_patch(1, "MUG", 30)))
    await trio.sleep(300)
    feed = await feed_status(client, feed_id)
    assert feed["processingStatus"] == "FATAL"
    report = await result_report(client, feed)
    assert report["summary"]["messagesAccepted"] == 0
    assert report["issues"][0]["severity"] == "ERROR" and "messageId" not in report["issues"][0]
    assert world.catalog.get(SELLER, "MUG").quantity == 5


@pytest.mark.parametrize("feed_type", ["POST_INVENTORY_AVAILABILITY_DATA",
                                       "POST_FLAT_FILE_PRICEANDQUANTITYONLY_UPDATE_DATA",
                                       "POST_PRODUCT_PRICING_DATA"])
async def test_removed_feed_types_are_accepted_then_end_fatal(sim, feed_type, autojump_clock):
    """The XML/flat-file listing feeds removed on 2025-07-31 end FATAL, saying why."""
    world, client = sim
    feed_id = await submit(client, b"<AmazonEnvelope/>", feed_type=feed_type)
    await trio.sleep(300)
    feed = await feed_status(client, feed_id)
    assert feed["processingStatus"] == "FATAL"
    report = await result_report(client, feed)
    assert "no longer supported" in report["issues"][0]["message"]


async def test_malformed_document_ends_fatal(sim, autojump_clock):
    """A document that is not JSON cannot be processed at all."""
    world, client = sim
    feed_id = await submit(client, b"{not json")
    await trio.sleep(300)
    feed = await feed_status(client, feed_id)
    assert feed["processingStatus"] == "FATAL"
    assert "not valid UTF-8 JSON" in (await result_report(client, feed))["issues"][0]["message"]


async def test_feed_for_another_seller_ends_fatal(sim, autojump_clock):
    world, client = sim
    feed_id = await submit(client, listings_feed(quantity_patch(1, "MUG", 1), seller="AOTHER"))
    await trio.sleep(300)
    feed = await feed_status(client, feed_id)
    assert feed["processingStatus"] == "FATAL"
    assert "sellerId" in (await result_report(client, feed))["issues"][0]["message"]


async def test_sixth_listings_feed_in_five_minutes_is_refused(sim, autojump_clock):
    """JSON_LISTINGS_FEED: 5 submissions per 5 minutes per region (REFERENCE §7.4)."""
    world, client = sim
    for n in range(5):
        await submit(client, listings_feed(quantity_patch(1, "MUG", n)))
    document_id = await upload(client, listings_feed(quantity_patch(1, "MUG", 9)))
    spec = {"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [DE],
            "inputFeedDocumentId": document_id}
    refused = await client.post("/feeds/2021-06-30/feeds", json=spec)
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["code"] == "QuotaExceeded"
    await trio.sleep(5 * 60 + 1)
    accepted = await client.post("/feeds/2021-06-30/feeds", json=spec)
    assert accepted.status_code == 202


async def test_upload_url_expires_after_five_minutes(sim, autojump_clock):
    """The presigned upload URL answers 403 AccessDenied (S3 style) once 5 minutes passed."""
    world, client = sim
    created = await client.post("/feeds/2021-06-30/documents", json={"contentType": JSON_TYPE})
    await trio.sleep(5 * 60 + 1)
    late = await client.put(created.json()["url"], content=b"{}",
                            headers={"content-type": JSON_TYPE})
    assert late.status_code == 403
    assert "<Code>AccessDenied</Code>" in late.text and "expired" in late.text


async def test_upload_with_another_content_type_is_refused(sim, autojump_clock):
    """The URL is signed for the declared Content-Type, as with S3."""
    world, client = sim
    created = await client.post("/feeds/2021-06-30/documents", json={"contentType": JSON_TYPE})
    wrong = await client.put(created.json()["url"], content=b"{}",
                             headers={"content-type": "text/plain"})
    assert wrong.status_code == 403 and "SignatureDoesNotMatch" in wrong.text


async def test_upload_url_needs_its_signature(sim, autojump_clock):
    world, client = sim
    created = await client.post("/feeds/2021-06-30/documents", json={"contentType": JSON_TYPE})
    forged = created.json()["url"].replace("X-Amz-Signature=", "X-Amz-Signature=x")
    answer = await client.put(forged, content=b"{}", headers={"content-type": JSON_TYPE})
    assert answer.status_code == 403


async def test_result_document_can_be_served_with_content_encoding(sim, autojump_clock):
    """enableContentEncodingUrlHeader=true: the URL answers Content-Encoding: gzip."""
    world, client = sim
    feed_id = await submit(client, listings_feed(quantity_patch(1, "MUG", 3)))
    await trio.sleep(300)
    feed = await feed_status(client, feed_id)
    meta = await client.get(f"/feeds/2021-06-30/documents/{feed['resultFeedDocumentId']}",
                            params={"enableContentEncodingUrlHeader": "true"})
    download = await client.get(meta.json()["url"])
    assert download.headers["content-encoding"] == "gzip"
    assert download.json()["header"]["feedId"] == feed_id     # httpx decoded it


async def test_cancel_feed_only_while_in_queue(sim, autojump_clock):
    world, client = sim
    first = await submit(client, listings_feed(quantity_patch(1, "MUG", 8)))
    cancelled = await client.delete(f"/feeds/2021-06-30/feeds/{first}")
    assert cancelled.status_code == 200 and cancelled.content == b""
    await trio.sleep(300)
    assert (await feed_status(client, first))["processingStatus"] == "CANCELLED"
    assert world.catalog.get(SELLER, "MUG").quantity == 5
    second = await submit(client, listings_feed(quantity_patch(1, "MUG", 8)))
    await trio.sleep(60)
    late = await client.delete(f"/feeds/2021-06-30/feeds/{second}")
    assert late.status_code == 400 and late.json()["errors"][0]["code"] == "InvalidInput"


async def test_get_feeds_filters_and_pages_with_next_token(sim, autojump_clock):
    world, client = sim
    ids = []
    for n in range(3):
        ids.append(await submit(client, listings_feed(quantity_patch(1, "MUG", n))))
        await trio.sleep(121)
    await trio.sleep(300)
    page = await client.get("/feeds/2021-06-30/feeds",
                            params={"feedTypes": "JSON_LISTINGS_FEED", "pageSize": "2"})
    assert page.status_code == 200
    assert [f["feedId"] for f in page.json()["feeds"]] == ids[::-1][:2]
    token = page.json()["nextToken"]
    mixed = await client.get("/feeds/2021-06-30/feeds",
                             params={"nextToken": token, "pageSize": "2"})
    assert mixed.status_code == 400, "nextToken must be sent alone"
    rest = await client.get("/feeds/2021-06-30/feeds", params={"nextToken": token})
    assert [f["feedId"] for f in rest.json()["feeds"]] == [ids[0]]
    assert "nextToken" not in rest.json()
    none = await client.get("/feeds/2021-06-30/feeds", params={
        "feedTypes": "JSON_LISTINGS_FEED", "processingStatuses": "IN_QUEUE"})
    assert none.json()["feeds"] == []
    missing = await client.get("/feeds/2021-06-30/feeds")
    assert missing.status_code == 400


async def test_create_feed_validates_its_input(sim, autojump_clock):
    world, client = sim
    document_id = await upload(client, listings_feed(quantity_patch(1, "MUG", 1)))
    foreign = await client.post("/feeds/2021-06-30/feeds", json={
        "feedType": "JSON_LISTINGS_FEED", "marketplaceIds": ["ATVPDKIKX0DER"],
        "inputFeedDocumentId": document_id})
    assert foreign.status_code == 400 and "ATVPDKIKX0DER" in foreign.json()["errors"][0]["message"]
    unknown = await client.post("/feeds/2021-06-30/feeds", json={
        "feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [DE], "inputFeedDocumentId": "nope"})
    assert unknown.status_code == 400
    missing = await client.get("/feeds/2021-06-30/feeds/123")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "NotFound"


async def test_feed_without_upload_ends_fatal(sim, autojump_clock):
    world, client = sim
    created = await client.post("/feeds/2021-06-30/documents", json={"contentType": JSON_TYPE})
    answer = await client.post("/feeds/2021-06-30/feeds", json={
        "feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [DE],
        "inputFeedDocumentId": created.json()["feedDocumentId"]})
    await trio.sleep(300)
    feed = await feed_status(client, answer.json()["feedId"])
    assert feed["processingStatus"] == "FATAL"


async def test_price_patch_sets_one_marketplace_only(sim, autojump_clock):
    """purchasable_offer is per marketplace: DE changes, FR keeps its price."""
    world, client = sim
    message = {"messageId": 1, "sku": "MUG", "operationType": "PATCH", "productType": "PRODUCT",
               "patches": [{"op": "replace", "path": "/attributes/purchasable_offer",
                            "value": [{"marketplace_id": DE, "currency": "EUR",
                                       "audience": "ALL",
                                       "our_price": [{"schedule": [{"value_with_tax": 12.5}]}]}]}]}
    await submit(client, listings_feed(message), marketplaces=(DE, FR))
    await trio.sleep(300)
    world.advance()                  # the world is lazy: requests (or this) bring it to now
    view = world.catalog.view(SELLER)["MUG"]["marketplaces"]
    assert view[DE]["price"] == "12.5" and view[FR]["price"] == "10.49"



async def test_every_feeds_answer_matches_the_model(sim, autojump_clock, contract):
    """Contract: success and error bodies of all six Feeds operations."""
    model = "feeds_2021-06-30.json"
    world, client = sim
    created = await client.post("/feeds/2021-06-30/documents", json={"contentType": JSON_TYPE})
    contract(created, model, "createFeedDocument")
    refused = await client.post("/feeds/2021-06-30/documents", json={})
    assert refused.status_code == 400
    contract(refused, model, "createFeedDocument")
    await client.put(created.json()["url"], content=listings_feed(quantity_patch(1, "MUG", 2)),
                     headers={"content-type": JSON_TYPE})
    feed = await client.post("/feeds/2021-06-30/feeds", json={
        "feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [DE],
        "inputFeedDocumentId": created.json()["feedDocumentId"]})
    contract(feed, model, "createFeed")
    bad_feed = await client.post("/feeds/2021-06-30/feeds", json={"feedType": "X"})
    contract(bad_feed, model, "createFeed")
    feed_id = feed.json()["feedId"]
    for path in (f"/feeds/2021-06-30/feeds/{feed_id}", "/feeds/2021-06-30/feeds/404"):
        contract(await client.get(path), model, "getFeed")
    listed = await client.get("/feeds/2021-06-30/feeds", params={"feedTypes": "JSON_LISTINGS_FEED"})
    contract(listed, model, "getFeeds")
    contract(await client.get("/feeds/2021-06-30/feeds"), model, "getFeeds")
    other = await submit(client, listings_feed(quantity_patch(1, "MUG", 1)))
    contract(await client.delete(f"/feeds/2021-06-30/feeds/{other}"), model, "cancelFeed")
    contract(await client.delete(f"/feeds/2021-06-30/feeds/{other}"), model, "cancelFeed")
    contract(await client.delete("/feeds/2021-06-30/feeds/404"), model, "cancelFeed")
    await trio.sleep(300)
    done = await feed_status(client, feed_id)
    document = await client.get(f"/feeds/2021-06-30/documents/{done['resultFeedDocumentId']}")
    contract(document, model, "getFeedDocument")
    contract(await client.get("/feeds/2021-06-30/documents/nope"), model, "getFeedDocument")
