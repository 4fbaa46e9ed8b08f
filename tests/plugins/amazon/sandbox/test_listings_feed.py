"""JSON_LISTINGS_FEED semantics: validation per message, operations, and the report format."""

from __future__ import annotations

import json

import jsonschema
import pytest

from marketsync.plugins.amazon.sandbox import World
from marketsync.plugins.amazon.sandbox import listings_feed as lf
from marketsync.plugins.amazon.sandbox.scenario import parse_scenario

from .conftest import SPAPI

SELLER, DE, UK = "A2FEEDLOGIC1", "A1PA6795UKMFR9", "A1F83G8C2ARO7P"
SHARED_SCHEMAS = SPAPI / "schemas"
SCENARIO = {
    "seed": 3,
    "applications": [{"client_id": "c", "client_secret": "s"}],
    "accounts": [{"seller_id": SELLER, "region": "EU", "marketplaces": ["DE", "UK"]}],
    "catalog": [
        {"sku": "MUG", "asin": "B0LF000001", "title": "Mug", "mfn_quantity": 5,
         "handling_time": 2, "prices": {"DE": "9.99", "UK": "8.99"}},
        {"sku": "FBA", "asin": "B0LF000002", "title": "Spork", "fba_quantity": 10,
         "prices": {"DE": "4.00"}},
    ],
}


@pytest.fixture
def world() -> World:
    return World(parse_scenario(SCENARIO))


def feed(*messages: dict, **header) -> bytes:
    return json.dumps({"header": {"sellerId": SELLER, "version": "2.0", **header},
                       "messages": list(messages)}).encode()


def patch(message_id: int, op: str, path: str, value=None, sku: str = "MUG") -> dict:
    entry = {"op": op, "path": path}
    if value is not None:
        entry["value"] = value
    return {"messageId": message_id, "sku": sku, "operationType": "PATCH",
            "productType": "PRODUCT", "patches": [entry]}


def availability(**fields) -> list[dict]:
    return [{"fulfillment_channel_code": "DEFAULT", **fields}]


def process(world: World, *messages: dict, marketplaces=(DE,), **header) -> dict:
    return lf.process(world.catalog, SELLER, "F1", list(marketplaces), feed(*messages, **header))


def test_merge_keeps_unsent_subfields_and_replace_drops_them(world):
    """merge sets only what is sent; replace swaps the whole value (REFERENCE §7.3)."""
    process(world, patch(1, "merge", "/attributes/fulfillment_availability",
                         availability(quantity=8)))
    mug = world.catalog.get(SELLER, "MUG")
    assert (mug.quantity, mug.handling_time) == (8, 2)
    process(world, patch(1, "replace", "/attributes/fulfillment_availability",
                         availability(quantity=4)))
    mug = world.catalog.get(SELLER, "MUG")
    assert (mug.quantity, mug.handling_time) == (4, None)


def test_handling_time_is_set_through_lead_time(world):
    process(world, patch(1, "merge", "/attributes/fulfillment_availability",
                         availability(lead_time_to_ship_max_days=5)))
    assert world.catalog.get(SELLER, "MUG").handling_time == 5


def test_quantity_is_the_skus_not_the_marketplaces(world):
    """One quantity per SKU and region: setting it through DE changes UK too."""
    process(world, patch(1, "merge", "/attributes/fulfillment_availability",
                         availability(quantity=0)), marketplaces=(DE,))
    view = world.catalog.view(SELLER)["MUG"]
    assert view["quantity"] == 0
    assert not view["marketplaces"][UK]["buyable"] and not view["marketplaces"][DE]["buyable"]


def test_messages_are_validated_one_by_one_against_the_message_schema(world):
    report = process(
        world,
        {"messageId": 1, "sku": "MUG", "operationType": "PATCH", "productType": "PRODUCT",
         "attributes": {"x": [{}]}, "patches": [{"op": "merge", "path": "/attributes/x",
                                                 "value": [{}]}]},
        {"messageId": 2, "sku": "MUG", "operationType": "UPSERT"},
        {"messageId": 3, "sku": "", "operationType": "DELETE"},
        patch(4, "merge", "/attributes/fulfillment_availability", availability(quantity=6)))
    by_id: dict[int, list[str]] = {}
    for found in report["issues"]:
        by_id.setdefault(found["messageId"], []).append(found["message"])
    assert "'attributes' is not allowed for operationType PATCH" in by_id[1]
    assert any("UPSERT" in text for text in by_id[2])
    assert 3 in by_id and 4 not in by_id
    assert report["summary"]["messagesAccepted"] == 1
    assert world.catalog.get(SELLER, "MUG").quantity == 6


def test_duplicate_message_id_is_an_error(world):
    report = process(world, patch(1, "merge", "/attributes/fulfillment_availability",
                                  availability(quantity=1)),
                     patch(1, "merge", "/attributes/fulfillment_availability",
                           availability(quantity=2)))
    assert [i["code"] for i in report["issues"]] == [lf.CODE_DUPLICATE_ID]
    assert world.catalog.get(SELLER, "MUG").quantity == 1


def test_patches_of_one_message_apply_all_or_nothing(world):
    """A bad price in the same message keeps the good quantity from being applied."""
    message = patch(1, "merge", "/attributes/fulfillment_availability", availability(quantity=9))
    message["patches"].append({"op": "replace", "path": "/attributes/purchasable_offer",
                               "value": [{"marketplace_id": DE, "currency": "GBP",
                                          "our_price": [{"schedule": [{"value_with_tax": 3}]}]}]})
    report = process(world, message)
    assert report["issues"][0]["attributeName"] == "purchasable_offer"
    assert "GBP" in report["issues"][0]["message"]
    assert world.catalog.get(SELLER, "MUG").quantity == 5


@pytest.mark.parametrize("value, reason", [
    (availability(quantity=-1), "integer >= 0"),
    (availability(quantity="5"), "integer >= 0"),
    (availability(quantity=1, is_inventory_available=True), "cannot be combined"),
    (availability(lead_time_to_ship_max_days=99), "0..30"),
    ([{"fulfillment_channel_code": "AMAZON_EU"}], "only DEFAULT"),
])
def test_bad_availability_values_are_issues(world, value, reason):
    report = process(world, patch(1, "merge", "/attributes/fulfillment_availability", value))
    assert report["summary"]["messagesInvalid"] == 1
    assert reason in report["issues"][0]["message"]


def test_price_replace_merge_and_delete(world):
    price = [{"marketplace_id": UK, "currency": "GBP", "audience": "ALL",
              "our_price": [{"schedule": [{"value_with_tax": 7.5}]}]}]
    process(world, patch(1, "replace", "/attributes/purchasable_offer", price),
            marketplaces=(UK,))
    assert world.catalog.view(SELLER)["MUG"]["marketplaces"][UK]["price"] == "7.5"
    process(world, patch(1, "merge", "/attributes/purchasable_offer",
                         [{"marketplace_id": UK, "currency": "GBP"}]), marketplaces=(UK,))
    assert world.catalog.view(SELLER)["MUG"]["marketplaces"][UK]["price"] == "7.5"
    process(world, patch(1, "delete", "/attributes/purchasable_offer",
                         [{"marketplace_id": UK}]), marketplaces=(UK,))
    view = world.catalog.view(SELLER)["MUG"]["marketplaces"]
    assert view[UK]["price"] is None and view[DE]["price"] == "9.99"


def test_price_for_a_marketplace_outside_the_feed_is_refused(world):
    report = process(world, patch(1, "replace", "/attributes/purchasable_offer", [
        {"marketplace_id": UK, "currency": "GBP",
         "our_price": [{"schedule": [{"value_with_tax": 1}]}]}]), marketplaces=(DE,))
    assert "not among the submission's marketplaceIds" in report["issues"][0]["message"]


def test_nested_paths_are_refused(world):
    report = process(world, patch(1, "replace", "/attributes/fulfillment_availability/0/quantity",
                                  [{"value": 3}]))
    assert report["issues"][0]["code"] == lf.CODE_PATH


def test_wrong_product_type_is_an_issue(world):
    message = patch(1, "merge", "/attributes/fulfillment_availability", availability(quantity=1))
    message["productType"] = "LUGGAGE"
    report = process(world, message)
    assert report["issues"][0]["code"] == lf.CODE_PRODUCT_TYPE


def test_partial_update_replaces_only_given_attributes(world):
    process(world, {"messageId": 1, "sku": "MUG", "operationType": "PARTIAL_UPDATE",
                    "productType": "PRODUCT",
                    "attributes": {"fulfillment_availability": availability(quantity=3),
                                   "color": [{"value": "blue"}]}})
    mug = world.catalog.get(SELLER, "MUG")
    assert (mug.quantity, mug.attributes["color"]) == (3, [{"value": "blue"}])
    assert world.catalog.view(SELLER)["MUG"]["marketplaces"][DE]["price"] == "9.99"


def test_update_replaces_everything_the_message_omits(world):
    """UPDATE is a full replace: price and quantity not sent are gone afterwards."""
    process(world, {"messageId": 1, "sku": "MUG", "operationType": "UPDATE",
                    "productType": "PRODUCT",
                    "attributes": {"item_name": [{"value": "Big mug"}]}})
    mug = world.catalog.get(SELLER, "MUG")
    assert mug.title == "Big mug" and mug.quantity is None
    assert mug.marketplaces[DE].price is None and mug.marketplaces[UK].price is not None


def test_delete_operation_deletes_the_listing(world):
    report = process(world, {"messageId": 1, "sku": "MUG", "operationType": "DELETE"})
    assert report["summary"]["messagesAccepted"] == 1
    assert world.catalog.get(SELLER, "MUG") is None
    assert world.catalog.view(SELLER)["MUG"]["deleted"] is True


def test_unknown_sku_is_an_issue_not_an_exception(world):
    report = process(world, patch(1, "merge", "/attributes/fulfillment_availability",
                                  availability(quantity=1), sku="GHOST"))
    assert report["issues"] == [{"messageId": 1, "sku": "GHOST", "code": lf.CODE_NOT_FOUND,
                                 "severity": "ERROR",
                                 "message": report["issues"][0]["message"]}]


def test_dry_run_validates_without_applying(world):
    message = patch(1, "merge", "/attributes/fulfillment_availability", availability(quantity=2))
    assert lf.apply_message(world.catalog, SELLER, [DE], message, dry_run=True) == []
    assert world.catalog.get(SELLER, "MUG").quantity == 5


@pytest.mark.parametrize("raw, reason", [
    (b"\xff\xfe", "not valid UTF-8 JSON"),
    (b'{"header": {"sellerId": "' + SELLER.encode() + b'", "version": "1.0"}, "messages": []}',
     "listings-feed-schema-v2"),
    (b'{"header": {"sellerId": "' + SELLER.encode() + b'", "version": "2.0"}}',
     "listings-feed-schema-v2"),
])
def test_unreadable_documents_are_rejected_as_a_whole(world, raw, reason):
    with pytest.raises(lf.FeedRejected, match=reason):
        lf.process(world.catalog, SELLER, "F1", [DE], raw)


def test_report_echoes_items_when_the_header_asks(world):
    report = process(world, patch(1, "merge", "/attributes/fulfillment_availability",
                                  availability(quantity=4)),
                     report={"includedData": ["fulfillmentAvailability", "offers"],
                             "apiVersion": "2021-08-01"})
    assert report["items"] == [{
        "sku": "MUG",
        "offers": [{"marketplaceId": DE, "offerType": "B2C",
                    "price": {"currencyCode": "EUR", "amount": "9.99"},
                    "audience": {"value": "ALL", "displayName": "Sell on Amazon"}}],
        "fulfillmentAvailability": [{"fulfillmentChannelCode": "DEFAULT", "quantity": 4}]}]
    assert report["summary"]["itemSummary"] == {"items": 1, "errors": 0, "warnings": 0}


def _official_schema(name: str) -> dict:
    path = SHARED_SCHEMAS / name
    if not path.exists():
        pytest.skip(f"contract check needs the official schemas at {SHARED_SCHEMAS} (absent here)")
    return json.loads(path.read_text())


def test_processing_reports_follow_the_official_schema(world):
    """Contract: success, partial failure, item echo and FATAL reports all validate."""
    schema = _official_schema("listings-feed-processing-report-schema-v2.json")
    reports = [
        process(world, patch(1, "merge", "/attributes/fulfillment_availability",
                             availability(quantity=4)),
                patch(2, "merge", "/attributes/fulfillment_availability",
                      availability(quantity=4), sku="GHOST"),
                {"messageId": 3, "sku": "MUG", "operationType": "PATCH"},
                report={"includedData": ["summaries", "attributes", "issues", "offers",
                                         "fulfillmentAvailability", "relationships",
                                         "productTypes"], "apiVersion": "2021-08-01"}),
        lf.fatal_report(SELLER, "F2", "broken"),
    ]
    for report in reports:
        jsonschema.Draft7Validator(schema).validate(report)


def test_the_shipped_schemas_are_the_official_ones():
    """sandbox/data holds unmodified copies, so the simulator works without ../shared."""
    for name in (lf.FEED_SCHEMA, lf.MESSAGE_SCHEMA, lf.REPORT_SCHEMA):
        assert lf.schema(name) == _official_schema(name)


def test_the_official_example_feed_is_accepted_by_the_envelope_check(world):
    example = json.loads(json.dumps(_official_schema("listings-feed-schema-v2.example.json")))
    example["header"]["sellerId"] = SELLER
    document = lf.parse_document(json.dumps(example).encode(), SELLER)
    assert all(lf.message_shape_issues(m) == [] for m in document["messages"])
