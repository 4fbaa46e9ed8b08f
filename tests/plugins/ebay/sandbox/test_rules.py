"""The simulated eBay keeps eBay's rules: windows and paging, 25 per bulk call, 250
revisions per listing and day, daily quotas, and seeded, repeatable days."""

from __future__ import annotations

import trio

from ..conftest import scenario, user_token
from .test_contract import FULFILMENT, INVENTORY, auth


async def test_orders_window_is_inclusive_and_pages_by_offset(sandbox, world, autojump_clock):
    await trio.sleep(6 * 3600)
    token = await user_token(sandbox)  # taken after the sleep: it lives two hours
    everything = (await sandbox.get(f"{FULFILMENT}/order", headers=auth(token), params={
        "filter": "lastmodifieddate:[2026-10-01T00:00:00.000Z..]", "limit": "200"})).json()
    seen, offset = [], 0
    while True:
        page = (await sandbox.get(f"{FULFILMENT}/order", headers=auth(token), params={
            "filter": "lastmodifieddate:[2026-10-01T00:00:00.000Z..]", "limit": "7",
            "offset": str(offset)})).json()
        seen += [o["orderId"] for o in page["orders"]]
        if "next" not in page:
            break
        offset += 7
    assert seen == [o["orderId"] for o in everything["orders"]]
    edge = everything["orders"][0]["lastModifiedDate"]
    exact = (await sandbox.get(f"{FULFILMENT}/order", headers=auth(token), params={
        "filter": f"lastmodifieddate:[{edge}..{edge}]"})).json()
    assert everything["orders"][0]["orderId"] in [o["orderId"] for o in exact["orders"]]
    too_big = await sandbox.get(f"{FULFILMENT}/order", headers=auth(token), params={"limit": "201"})
    assert too_big.status_code == 400


async def test_bulk_update_takes_at_most_25(sandbox, world):
    token = await user_token(sandbox)  # the first call places the history's orders
    offer = world.offers["seller-one"]["MUG-1"].offer_id
    before = world.offers["seller-one"]["MUG-1"].available
    requests = [{"sku": "MUG-1", "offers": [{"offerId": offer, "availableQuantity": n}]}
                for n in range(26)]
    refused = await sandbox.post(f"{INVENTORY}/bulk_update_price_quantity", headers=auth(token),
                                 json={"requests": requests})
    assert refused.status_code == 400
    assert world.offers["seller-one"]["MUG-1"].available == before


async def test_a_listing_is_revised_at_most_the_limit_per_pacific_day(sandbox, world, autojump_clock):
    token = await user_token(sandbox)
    world.scenario.revision_limit = 3
    offer = world.offers["seller-one"]["MUG-1"]

    async def revise(quantity: int) -> int:
        body = (await sandbox.post(f"{INVENTORY}/bulk_update_price_quantity", headers=auth(token),
                                   json={"requests": [{"sku": "MUG-1", "offers": [
                                       {"offerId": offer.offer_id, "availableQuantity": quantity}]}]})).json()
        return body["responses"][0]["statusCode"]

    assert [await revise(q) for q in (10, 11, 12, 13)] == [200, 200, 200, 400]
    assert await revise(12) == 200  # no change, no revision
    assert offer.available == 12
    # 12:00 UTC is 04:00 in Los Angeles: the day turns 20 hours later
    await trio.sleep(19 * 3600)
    token = await user_token(sandbox)
    assert await revise(14) == 400
    await trio.sleep(3600 + 1)
    token = await user_token(sandbox)
    assert await revise(14) == 200


async def test_daily_quota_answers_429_until_the_reset_and_rate_limits_tell(sandbox, world,
                                                                          autojump_clock):
    world.scenario.quotas["sell.fulfillment"] = 3
    token = await user_token(sandbox)
    statuses = [(await sandbox.get(f"{FULFILMENT}/order", headers=auth(token))).status_code
                for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limits = (await sandbox.get("/developer/analytics/v1_beta/rate_limit/", headers=auth(token),
                                params={"api_name": "fulfillment"})).json()
    rate = limits["rateLimits"][0]["resources"][0]["rates"][0]
    assert (rate["limit"], rate["remaining"]) == (3, 0)
    assert rate["reset"] == "2026-11-03T08:00:00.000Z"  # midnight PST
    await trio.sleep(20 * 3600 + 1)
    token = await user_token(sandbox)
    assert (await sandbox.get(f"{FULFILMENT}/order", headers=auth(token))).status_code == 200


async def test_same_seed_same_orders_however_time_is_chopped(autojump_clock):
    from marketsync.core import clock
    from marketsync.plugins.ebay.sandbox import World
    from ..conftest import START

    clock.set_start(START)
    one, two = World(scenario()), World(scenario())
    two.advance()
    await trio.sleep(5000)
    two.advance()
    await trio.sleep(5000)
    one.advance()
    two.advance()
    assert list(one.orders["seller-one"]) == list(two.orders["seller-one"])
    assert len(one.orders["seller-one"]) > 5
    cancelled = [o for o in one.orders["seller-one"].values()
                 if o["cancelStatus"]["cancelState"] == "CANCELED"]
    assert cancelled, "the scenario cancels a share of orders"


async def test_a_sale_and_a_cancellation_move_the_offer_quantity(sandbox, world):
    world.advance()  # the history's orders first
    before = world.offers["seller-one"]["TEAPOT-UK"].available
    sold = (await sandbox.post("/_sandbox/orders", json={"sku": "TEAPOT-UK", "quantity": 3})).json()
    assert world.offers["seller-one"]["TEAPOT-UK"].available == before - 3
    assert sold["lineItems"][0]["listingMarketplaceId"] == "EBAY_GB"
    await sandbox.post(f"/_sandbox/orders/{sold['orderId']}/cancel")
    assert world.offers["seller-one"]["TEAPOT-UK"].available == before
    too_many = await sandbox.post("/_sandbox/orders", json={"sku": "TEAPOT-UK", "quantity": 10**6})
    assert too_many.status_code == 400
