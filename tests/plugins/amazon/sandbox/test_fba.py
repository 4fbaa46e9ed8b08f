"""FBA Inventory in the simulator: summaries, filters, pages and 30-second page tokens."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest
import trio

from marketsync.core import clock
from marketsync.plugins.amazon.sandbox import World, create_app
from marketsync.plugins.amazon.sandbox.scenario import parse_scenario

SELLER, CLIENT = "A2FBATESTEU1", "amzn1.application-oa2-client.fbatest"
DE, UK = "A1PA6795UKMFR9", "A1F83G8C2ARO7P"
MODEL = "fbaInventory.json"
PATH = "/fba/inventory/v1/summaries"
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
SCENARIO = {
    "seed": 9,
    "applications": [{"client_id": CLIENT, "client_secret": "secret"}],
    "accounts": [{"seller_id": SELLER, "region": "EU", "marketplaces": ["DE", "UK"]}],
    "catalog": [{"sku": f"FBA-{n:02d}", "asin": f"B0FB0000{n:02d}", "title": f"Thing {n}",
                 "fba_quantity": 10 + n, "prices": {"DE": "5.00"}} for n in range(7)]
    + [{"sku": "MFN-1", "asin": "B0FB000099", "title": "Mug", "mfn_quantity": 3,
        "prices": {"DE": "5.00", "UK": "4.00"}}],
}


@pytest.fixture
async def sim():
    clock.set_start(START)
    world = World(parse_scenario(SCENARIO))
    world.catalog.timing.fba_page_size = 3
    token, _ = world.issue_access_token(SELLER, CLIENT, world.now())
    transport = httpx.ASGITransport(app=create_app(world))
    async with httpx.AsyncClient(transport=transport, base_url=world.base_url,
                                 headers={"x-amz-access-token": token}) as client:
        yield world, client


def params(**extra) -> dict:
    return {"granularityType": "Marketplace", "granularityId": DE, "marketplaceIds": DE,
            **extra}


async def test_pages_through_every_fba_sku(sim, autojump_clock, contract):
    world, client = sim
    skus, token = [], None
    while True:
        answer = await client.get(PATH, params=params(**({"nextToken": token} if token else {})))
        assert answer.status_code == 200
        contract(answer, MODEL, "getInventorySummaries")
        skus += [s["sellerSku"] for s in answer.json()["payload"]["inventorySummaries"]]
        token = answer.json().get("pagination", {}).get("nextToken")
        if token is None:
            break
        await trio.sleep(1)                # a governed client waits between pages
    assert skus == [f"FBA-{n:02d}" for n in range(7)], "MFN SKUs are not FBA inventory"


async def test_details_carry_fulfillable_and_reserved_quantities(sim, contract):
    world, client = sim
    answer = await client.get(PATH, params=params(details="true", sellerSku="FBA-03"))
    contract(answer, MODEL, "getInventorySummaries")
    [summary] = answer.json()["payload"]["inventorySummaries"]
    assert summary["inventoryDetails"]["fulfillableQuantity"] == 13
    assert summary["totalQuantity"] == 13 and summary["fnSku"]
    assert answer.json()["payload"]["granularity"] == {"granularityType": "Marketplace",
                                                       "granularityId": DE}
    plain = await client.get(PATH, params=params(sellerSku="FBA-03"))
    assert "inventoryDetails" not in plain.json()["payload"]["inventorySummaries"][0]


async def test_next_token_expires_after_thirty_seconds(sim, autojump_clock, contract):
    """An expired token is a 400 InvalidInput; the client must restart from page one."""
    world, client = sim
    first = await client.get(PATH, params=params())
    token = first.json()["pagination"]["nextToken"]
    await trio.sleep(31)
    late = await client.get(PATH, params=params(nextToken=token))
    assert late.status_code == 400
    contract(late, MODEL, "getInventorySummaries")
    assert late.json()["errors"][0] == {"code": "InvalidInput",
                                        "message": "Next token is invalid or expired"}
    again = await client.get(PATH, params=params())
    fresh = again.json()["pagination"]["nextToken"]
    await trio.sleep(29)
    assert (await client.get(PATH, params=params(nextToken=fresh))).status_code == 200


async def test_token_only_works_for_the_query_it_came_from(sim):
    world, client = sim
    first = await client.get(PATH, params=params())
    token = first.json()["pagination"]["nextToken"]
    other = await client.get(PATH, params=params(details="true", nextToken=token))
    assert other.status_code == 400


async def test_seller_skus_filter(sim):
    world, client = sim
    answer = await client.get(PATH, params=params(sellerSkus="FBA-01,FBA-05,MFN-1"))
    assert [s["sellerSku"] for s in answer.json()["payload"]["inventorySummaries"]] == [
        "FBA-01", "FBA-05"]


async def test_start_date_time_returns_only_changed_summaries(sim, autojump_clock):
    """startDateTime: summaries changed since then (sellerSkus are then ignored)."""
    world, client = sim
    await trio.sleep(60)
    world.catalog.channel_edit(SELLER, "FBA-02", quantity=1)
    since = (START + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = await client.get(PATH, params=params(startDateTime=since, sellerSkus="FBA-04"))
    assert [s["sellerSku"] for s in answer.json()["payload"]["inventorySummaries"]] == ["FBA-02"]
    assert answer.json()["payload"]["inventorySummaries"][0]["totalQuantity"] == 1


async def test_stock_changes_show_up_as_time_passes(sim, autojump_clock):
    """FBA drift: over two days the summaries change without any call by the seller."""
    world, client = sim
    before = await client.get(PATH, params=params(sellerSkus="FBA-00,FBA-01,FBA-02"))
    await trio.sleep(2 * 24 * 3600)
    token, _ = world.issue_access_token(SELLER, CLIENT, world.now())
    client.headers["x-amz-access-token"] = token
    after = await client.get(PATH, params=params(sellerSkus="FBA-00,FBA-01,FBA-02"))
    totals = [[s["totalQuantity"] for s in r.json()["payload"]["inventorySummaries"]]
              for r in (before, after)]
    assert totals[0] != totals[1]


@pytest.mark.parametrize("bad, word", [
    ({"granularityType": "Seller"}, "granularityType"),
    ({"granularityId": ""}, "granularityId"),
    ({"marketplaceIds": UK}, "granularityId"),
    ({"marketplaceIds": f"{DE},{UK}"}, "at most 1"),
    ({"details": "yes"}, "details"),
    ({"startDateTime": "last week"}, "startDateTime"),
    ({"granularityId": "ATVPDKIKX0DER", "marketplaceIds": "ATVPDKIKX0DER"}, "not a marketplace"),
])
async def test_bad_parameters_are_400(sim, contract, bad, word):
    world, client = sim
    answer = await client.get(PATH, params=params(**bad))
    assert answer.status_code == 400
    contract(answer, MODEL, "getInventorySummaries")
    assert word in answer.json()["errors"][0]["message"]


async def test_marketplace_without_fba_skus_has_an_empty_page(sim, contract):
    world, client = sim
    answer = await client.get(PATH, params=params(granularityId=UK, marketplaceIds=UK))
    contract(answer, MODEL, "getInventorySummaries")
    assert answer.json()["payload"]["inventorySummaries"] == []
    assert "pagination" not in answer.json()



async def test_summaries_are_throttled_by_their_own_usage_plan(sim, autojump_clock):
    """getInventorySummaries is 2 rps, burst 2: the third call at once is a 429."""
    world, client = sim
    answers = [await client.get(PATH, params=params()) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0].headers["x-amzn-RateLimit-Limit"] == "2.0"
    await trio.sleep(0.5)
    assert (await client.get(PATH, params=params())).status_code == 200
