"""Listings Items API in the simulator: get, patch (with validation preview), delete."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio

from .conftest import signed_in

SELLER, CLIENT = "A2LISTINGSEU1", "amzn1.application-oa2-client.listingstest"
DE, UK = "A1PA6795UKMFR9", "A1F83G8C2ARO7P"
MODEL = "listingsItems_2021-08-01.json"
ALL = "summaries,attributes,issues,offers,fulfillmentAvailability,relationships,productTypes"
SCENARIO = {
    "seed": 5,
    "applications": [{"client_id": CLIENT, "client_secret": "secret"}],
    "accounts": [{"seller_id": SELLER, "region": "EU", "marketplaces": ["DE", "UK"]},
                 {"seller_id": "A2OTHEREU", "region": "EU", "marketplaces": ["DE"]}],
    "catalog": [
        {"sku": "MUG/1", "asin": "B0LI000001", "title": "Mug", "mfn_quantity": 5,
         "handling_time": 1, "prices": {"DE": "9.99", "UK": "8.49"}},
        {"sku": "SPORK", "asin": "B0LI000002", "title": "Spork", "fba_quantity": 12,
         "prices": {"DE": "4.00"}},
    ],
}
QUANTITY_PATCH = {"productType": "PRODUCT", "patches": [
    {"op": "merge", "path": "/attributes/fulfillment_availability",
     "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 3}]}]}


@pytest.fixture
async def sim():
    async with signed_in(SCENARIO, SELLER, CLIENT) as pair:
        yield pair


def item_path(sku: str = "MUG%2F1", seller: str = SELLER) -> str:
    return f"/listings/2021-08-01/items/{seller}/{sku}"


async def test_get_listings_item_with_every_included_data_set(sim, contract):
    world, client = sim
    answer = await client.get(item_path(), params={"marketplaceIds": DE, "includedData": ALL})
    assert answer.status_code == 200
    contract(answer, MODEL, "getListingsItem")
    item = answer.json()
    assert item["sku"] == "MUG/1"
    assert item["summaries"][0]["status"] == ["BUYABLE", "DISCOVERABLE"]
    assert item["offers"][0]["price"] == {"currencyCode": "EUR", "amount": "9.99"}
    assert item["fulfillmentAvailability"] == [{"fulfillmentChannelCode": "DEFAULT",
                                                "quantity": 5}]
    assert item["attributes"]["fulfillment_availability"][0]["lead_time_to_ship_max_days"] == 1
    assert item["productTypes"] == [{"marketplaceId": DE, "productType": "PRODUCT"}]


async def test_get_defaults_to_summaries(sim, contract):
    world, client = sim
    answer = await client.get(item_path(), params={"marketplaceIds": UK})
    contract(answer, MODEL, "getListingsItem")
    assert set(answer.json()) == {"sku", "summaries"}


async def test_fba_listing_shows_amazons_channel_and_stock(sim, contract):
    world, client = sim
    answer = await client.get(item_path("SPORK"), params={
        "marketplaceIds": DE, "includedData": "summaries,fulfillmentAvailability"})
    contract(answer, MODEL, "getListingsItem")
    assert answer.json()["fulfillmentAvailability"] == [
        {"fulfillmentChannelCode": "AMAZON_EU", "quantity": 12}]
    assert answer.json()["summaries"][0]["fnSku"]


async def test_out_of_stock_listing_is_discoverable_not_buyable(sim):
    world, client = sim
    world.catalog.channel_edit(SELLER, "MUG/1", quantity=0)
    answer = await client.get(item_path(), params={"marketplaceIds": DE})
    assert answer.json()["summaries"][0]["status"] == ["DISCOVERABLE"]


async def test_unknown_sku_or_marketplace_is_404(sim, contract):
    world, client = sim
    missing = await client.get(item_path("NOPE"), params={"marketplaceIds": DE})
    assert missing.status_code == 404
    contract(missing, MODEL, "getListingsItem")
    not_there = await client.get(item_path("SPORK"), params={"marketplaceIds": UK})
    assert not_there.status_code == 404


async def test_bad_parameters_are_400(sim, contract):
    world, client = sim
    no_marketplace = await client.get(item_path())
    assert no_marketplace.status_code == 400
    contract(no_marketplace, MODEL, "getListingsItem")
    bad_data = await client.get(item_path(), params={"marketplaceIds": DE,
                                                     "includedData": "everything"})
    assert bad_data.status_code == 400 and "everything" in bad_data.json()["errors"][0]["message"]
    foreign = await client.get(item_path(), params={"marketplaceIds": "ATVPDKIKX0DER"})
    assert foreign.status_code == 400


async def test_another_sellers_path_is_denied(sim):
    world, client = sim
    answer = await client.get(item_path(seller="A2OTHEREU"), params={"marketplaceIds": DE})
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["code"] == "Unauthorized"


async def test_patch_is_accepted_and_applied(sim, contract):
    world, client = sim
    answer = await client.patch(item_path(), params={"marketplaceIds": DE}, json=QUANTITY_PATCH)
    assert answer.status_code == 200
    contract(answer, MODEL, "patchListingsItem")
    assert answer.json()["status"] == "ACCEPTED" and answer.json()["issues"] == []
    assert world.catalog.get(SELLER, "MUG/1").quantity == 3


async def test_validation_preview_validates_without_applying(sim, contract):
    world, client = sim
    answer = await client.patch(item_path(), json=QUANTITY_PATCH, params={
        "marketplaceIds": DE, "mode": "VALIDATION_PREVIEW", "includedData": "identifiers,issues"})
    contract(answer, MODEL, "patchListingsItem")
    assert answer.json()["status"] == "VALID"
    assert answer.json()["identifiers"] == [{"marketplaceId": DE, "asin": "B0LI000001"}]
    assert world.catalog.get(SELLER, "MUG/1").quantity == 5


async def test_invalid_patch_is_answered_with_issues(sim, contract):
    world, client = sim
    body = {"productType": "PRODUCT", "patches": [
        {"op": "merge", "path": "/attributes/fulfillment_availability",
         "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": -4}]}]}
    for mode in (None, "VALIDATION_PREVIEW"):
        params = {"marketplaceIds": DE, **({"mode": mode} if mode else {})}
        answer = await client.patch(item_path(), params=params, json=body)
        contract(answer, MODEL, "patchListingsItem")
        assert answer.json()["status"] == "INVALID"
        found = answer.json()["issues"][0]
        assert found["severity"] == "ERROR"
        assert found["attributeNames"] == ["fulfillment_availability"]
    assert world.catalog.get(SELLER, "MUG/1").quantity == 5


async def test_patch_of_an_fba_sku_quantity_is_invalid(sim):
    world, client = sim
    answer = await client.patch(item_path("SPORK"), params={"marketplaceIds": DE},
                                json=QUANTITY_PATCH)
    assert answer.json()["status"] == "INVALID"
    assert world.catalog.get(SELLER, "SPORK").fba.fulfillable == 12


async def test_malformed_patch_request_is_400(sim, contract):
    world, client = sim
    for body in ({"patches": []}, {"productType": "PRODUCT", "patches": [{"op": "move"}]},
                 {"productType": "PRODUCT", "patches": [{"op": "add", "path": "/attributes/x",
                                                         "value": {"not": "an array"}}]}):
        answer = await client.patch(item_path(), params={"marketplaceIds": DE}, json=body)
        assert answer.status_code == 400
        contract(answer, MODEL, "patchListingsItem")
    identifiers = await client.patch(item_path(), json=QUANTITY_PATCH, params={
        "marketplaceIds": DE, "includedData": "identifiers"})
    assert identifiers.status_code == 400


async def test_delete_removes_one_marketplace_then_the_listing(sim, contract):
    world, client = sim
    first = await client.delete(item_path(), params={"marketplaceIds": UK})
    contract(first, MODEL, "deleteListingsItem")
    assert first.json()["status"] == "ACCEPTED"
    assert list(world.catalog.get(SELLER, "MUG/1").marketplaces) == [DE]
    await client.delete(item_path(), params={"marketplaceIds": DE})
    assert world.catalog.get(SELLER, "MUG/1") is None
    again = await client.delete(item_path(), params={"marketplaceIds": DE})
    contract(again, MODEL, "deleteListingsItem")
    assert again.json()["status"] == "INVALID"
    two = await client.delete(item_path("SPORK"), params={"marketplaceIds": f"{DE},{UK}"})
    assert two.status_code == 400, "delete takes one marketplace"


async def test_search_by_sku_identifiers_gives_the_product_type(sim, contract):
    """The client learns each SKU's productType this way before patching."""
    world, client = sim
    answer = await client.get(f"/listings/2021-08-01/items/{SELLER}", params={
        "marketplaceIds": DE, "identifiers": "MUG/1,SPORK,GHOST", "identifiersType": "SKU",
        "includedData": "summaries", "pageSize": "20"})
    assert answer.status_code == 200
    contract(answer, MODEL, "searchListingsItems")
    found = {i["sku"]: i["summaries"][0]["productType"] for i in answer.json()["items"]}
    assert found == {"MUG/1": "PRODUCT", "SPORK": "PRODUCT"}
    assert answer.json()["numberOfResults"] == 2 and "pagination" not in answer.json()
    by_asin = await client.get(f"/listings/2021-08-01/items/{SELLER}", params={
        "marketplaceIds": DE, "identifiers": "B0LI000002", "identifiersType": "ASIN"})
    assert [i["sku"] for i in by_asin.json()["items"]] == ["SPORK"]


async def test_search_pages_sorts_and_filters_by_status(sim, autojump_clock, contract):
    world, client = sim
    for n in range(5):
        await trio.sleep(1)
        world.catalog.put_offer(SELLER, f"EXTRA-{n}", asin=f"B0EX00000{n}", title="Extra",
                                marketplace_id=DE, price=Decimal("1"), currency="EUR",
                                quantity=n, handling_time=1)
    search = f"/listings/2021-08-01/items/{SELLER}"
    first = await client.get(search, params={"marketplaceIds": DE, "pageSize": "3",
                                             "sortBy": "sku", "sortOrder": "ASC"})
    contract(first, MODEL, "searchListingsItems")
    assert first.json()["numberOfResults"] == 7
    second = await client.get(search, params={
        "marketplaceIds": DE, "pageToken": first.json()["pagination"]["nextToken"]})
    contract(second, MODEL, "searchListingsItems")
    assert "previousToken" in second.json()["pagination"]
    skus = [i["sku"] for page in (first, second) for i in page.json()["items"]]
    assert skus == ["EXTRA-0", "EXTRA-1", "EXTRA-2", "EXTRA-3", "EXTRA-4", "MUG/1"]
    newest = await client.get(search, params={"marketplaceIds": DE, "pageSize": "1"})
    assert newest.json()["items"][0]["sku"] == "EXTRA-4", "default: lastUpdatedDate DESC"
    unbuyable = await client.get(search, params={"marketplaceIds": DE,
                                                 "withoutStatus": "BUYABLE"})
    assert [i["sku"] for i in unbuyable.json()["items"]] == ["EXTRA-0"]
    bad = await client.get(search, params={"marketplaceIds": DE, "identifiers": "X"})
    assert bad.status_code == 400
    contract(bad, MODEL, "searchListingsItems")
