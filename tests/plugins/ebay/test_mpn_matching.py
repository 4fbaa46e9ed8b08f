"""eBay listings find their product by MPN when SKU and EAN/UPC do not tell, as a seller
meets it: inventory items as the simulator serves them (``product.mpn`` with its brand,
"Does not apply" where there is none), imported by the plugin and applied by the core."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from marketsync.core.domain import products
from marketsync.core.store import Store
from marketsync.core.store import integrations as rows
from marketsync.core.store.models import Listing, Product
from marketsync.core.types import Cursor
from marketsync.plugins import ebay as plugin

from .conftest import SELLER

ITEM = {"account": SELLER, "marketplace": "EBAY_US", "quantity": 5, "price": "10.00"}


@pytest.fixture
def scenario_changes():
    return {"catalog": [
        # the seller's own SKUs differ from ours; the part numbers are the manufacturer's
        {**ITEM, "sku": "eb-drill-18v", "title": "Drill 18 V", "mpn": "DR-18V-2", "brand": "Acme"},
        {**ITEM, "sku": "eb-bit-set", "title": "Bit set", "mpn": "BS-100", "brand": "Acme"},
        {**ITEM, "sku": "eb-saw", "title": "Saw", "mpn": "Does not apply", "brand": "Unbranded"},
        {**ITEM, "sku": "eb-kettle", "title": "Kettle", "upc": "012345678905", "mpn": "K-1",
         "brand": "Hot"},
        {**ITEM, "sku": "eb-drill-uk", "marketplace": "EBAY_GB", "title": "Drill (UK)",
         "mpn": "DR-18V-2", "brand": "Acme"},
    ]}


async def import_all(store: Store, integration, alias: str) -> dict[str, int]:
    integration_id = await store.run(lambda s: rows.ensure_integration(
        s, alias=alias, channel="ebay", account=SELLER, marketplace=integration.marketplace))
    page = await plugin.import_products(integration, Cursor())
    assert page.done and not page.rejected
    return await store.run(products.apply_channel_listings, integration_id, page.items, True)


async def mapping(store: Store) -> dict[str, str | None]:
    def read(session):
        return dict(session.execute(
            select(Listing.channel_sku, Product.sku)
            .outerjoin(Product, Product.id == Listing.product_id)).all())
    return await store.read(read)


async def test_listings_map_by_mpn_after_sku_and_gtin(store, make_integration):
    await store.run(products.add_product, "DRILL", mpn="DR-18V-2")
    await store.run(products.add_product, "SAW", mpn="SAW-9")
    await store.run(products.add_product, "KETTLE", ean="0012345678905", mpn="OTHER")
    counts = await import_all(store, make_integration("US"), "ebay-us")
    found = await mapping(store)
    assert found["eb-drill-18v"] == "DRILL"  # by MPN
    assert found["eb-kettle"] == "KETTLE"  # the UPC as GTIN wins before the MPN
    assert found["eb-saw"] == "eb-saw"  # "Does not apply" is no part number: its own product
    assert found["eb-bit-set"] == "eb-bit-set"  # no match at all: its own product
    assert counts["created"] == 4 and counts["ambiguous"] == 0
    # the listing keeps its MPN, so eBay UK's listing of the part finds the same product
    await import_all(store, make_integration("GB"), "ebay-gb")
    assert (await mapping(store))["eb-drill-uk"] == "DRILL"


async def test_an_mpn_of_two_products_leaves_the_listing_unmapped_and_says_so(
        store, make_integration, caplog):
    await store.run(products.add_product, "DRILL-ACME", mpn="DR-18V-2")
    await store.run(products.add_product, "DRILL-OTHER-BRAND", mpn="DR-18V-2")
    with caplog.at_level(logging.WARNING, logger="marketsync.core.domain.products"):
        counts = await import_all(store, make_integration("US"), "ebay-us")
    found = await mapping(store)
    assert found["eb-drill-18v"] is None and counts["ambiguous"] == 1
    warning = next(r.getMessage() for r in caplog.records if "eb-drill-18v" in r.getMessage())
    assert "'DRILL-ACME'" in warning and "'DRILL-OTHER-BRAND'" in warning
    assert "products map" in warning
    # a later import does not guess either, and mapping by hand sticks
    await import_all(store, make_integration("US"), "ebay-us")
    assert (await mapping(store))["eb-drill-18v"] is None
    await store.run(lambda s: products.map_listing(
        s, products.integration_id(s, "ebay-us"), "eb-drill-18v", "DRILL-ACME"))
    await import_all(store, make_integration("US"), "ebay-us")
    assert (await mapping(store))["eb-drill-18v"] == "DRILL-ACME"


async def test_a_product_mpn_is_checked_when_given_by_hand(store):
    assert await store.run(products.add_product, "P", mpn="  X-1 ")
    assert (await store.read(lambda s: s.execute(
        select(Product.mpn).where(Product.sku == "P")).scalar_one())) == "X-1"
    with pytest.raises(ValueError, match="'Does not apply'.*not a part number"):
        await store.run(products.add_product, "Q", mpn="Does not apply")
    with pytest.raises(ValueError, match="has MPN 'X-1' already"):
        await store.run(products.add_product, "P", mpn="X-2")
