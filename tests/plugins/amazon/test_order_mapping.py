"""Mapping v2026-01-01 orders (field names as in orders_2026-01-01.json) to ChannelOrder."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from marketsync.core.types import Fulfillment, OrderStatus
from marketsync.plugins.amazon.orders import Malformed, map_order, map_orders

ORDER = {
    "orderId": "305-1234567-7654321",
    "createdTime": "2026-11-01T10:00:00Z",
    "lastUpdatedTime": "2026-11-01T12:30:00Z",
    "salesChannel": {"channelName": "AMAZON", "marketplaceId": "A1PA6795UKMFR9",
                     "marketplaceName": "Amazon.de"},
    "fulfillment": {"fulfillmentStatus": "PARTIALLY_SHIPPED", "fulfilledBy": "MERCHANT"},
    "proceeds": {"grandTotal": {"amount": "27.00", "currencyCode": "EUR"}},
    "orderItems": [
        {"orderItemId": "11", "quantityOrdered": 2,
         "product": {"asin": "B0X", "sellerSku": "MUG-1", "title": "Mug",
                     "price": {"unitPrice": {"amount": "9.00", "currencyCode": "EUR"}}},
         "fulfillment": {"quantityFulfilled": 1, "quantityUnfulfilled": 1}},
    ],
    "packages": [{"packageReferenceId": "1", "shipTime": "2026-11-01T12:00:00Z",
                  "carrier": "DHL", "trackingNumber": "123"}],
    "recipient": {"deliveryAddress": {"name": "E. M.", "addressLine1": "Heidestr. 17",
                                      "city": "Köln", "postalCode": "51147", "countryCode": "DE"}},
}


def variant(**changes):
    order = copy.deepcopy(ORDER)
    order.update(changes)
    return order


def test_a_complete_order_maps_field_by_field():
    order = map_order(ORDER)
    assert order.status is OrderStatus.PARTIALLY_SHIPPED and order.channel_status == "PARTIALLY_SHIPPED"
    assert order.fulfillment is Fulfillment.MFN and order.marketplace == "DE"
    assert order.total.amount == Decimal("27.00") and order.currency == "EUR"
    item = order.items[0]
    assert (item.channel_sku, item.quantity, item.quantity_shipped) == ("MUG-1", 2, 1)
    assert item.unit_price.amount == Decimal("9.00")
    assert order.shipping_address.postal_code == "51147"
    assert order.pii_available and order.buyer is None  # the address alone is buyer data
    assert order.shipped_at.isoformat() == "2026-11-01T12:00:00+00:00"


@pytest.mark.parametrize("status, expected", [
    ("PENDING", OrderStatus.NEW), ("UNSHIPPED", OrderStatus.NEW),
    ("SHIPPED", OrderStatus.SHIPPED), ("CANCELLED", OrderStatus.CANCELED),
    ("UNFULFILLABLE", OrderStatus.CANCELED), ("PENDING_AVAILABILITY", OrderStatus.NEW)])
def test_statuses(status, expected):
    assert map_order(variant(fulfillment={"fulfillmentStatus": status,
                                          "fulfilledBy": "AMAZON"})).status is expected


def test_without_buyer_and_recipient_the_order_is_flagged():
    order = map_order(variant(recipient=None))
    assert order.pii_available is False and order.shipping_address is None


@pytest.mark.parametrize("change, reason", [
    ({"salesChannel": {"channelName": "NON_AMAZON", "marketplaceId": "A38D8NSA03LJTC"}},
     "not an Amazon marketplace id"),
    ({"orderItems": []}, "orderItems is missing or empty"),
    ({"orderItems": [{"orderItemId": "1", "quantityOrdered": 1, "product": {}}]},
     "orderItems[0].product.sellerSku is missing"),
    ({"proceeds": {"grandTotal": {"amount": "lots", "currencyCode": "EUR"}}},
     "proceeds.grandTotal needs a decimal amount"),
    ({"lastUpdatedTime": "2026-10-01T00:00:00Z"}, "lastUpdatedTime is before createdTime"),
    ({"createdTime": "yesterday"}, "createdTime 'yesterday' is not an ISO 8601 time"),
])
def test_a_broken_order_is_rejected_with_its_reason(change, reason):
    with pytest.raises(Malformed) as raised:
        map_order(variant(**change))
    assert reason in str(raised.value)


def test_one_bad_order_does_not_stop_the_page():
    items, rejected = map_orders([ORDER, variant(orderId="305-0000000-0000000", orderItems=[]),
                                  "not an object"])
    assert [o.channel_order_id for o in items] == ["305-1234567-7654321"]
    assert [r.record_id for r in rejected] == ["305-0000000-0000000", None]


@pytest.mark.parametrize("change, error", [
    ({"recipient": "n/a"}, "AttributeError"),
    ({"proceeds": ["x"]}, "AttributeError"),
    ({"fulfillment": {"fulfillmentStatus": "SHIPPED", "shipByWindow": "soon"}}, "AttributeError"),
    ({"programs": 5}, "TypeError"),
    ({"fulfillment": {"fulfillmentStatus": ["SHIPPED"]}}, "TypeError"),
])
def test_a_record_that_breaks_the_mapping_code_is_rejected_alone(change, error):
    """Issue 12: these raised out of map_orders and blocked the account's whole import."""
    odd = variant(orderId="305-0000000-0000001", **change)
    items, rejected = map_orders([ORDER, odd])
    assert [o.channel_order_id for o in items] == ["305-1234567-7654321"]
    [record] = rejected
    assert record.record_id == "305-0000000-0000001"
    assert record.reason.startswith(error)
    assert "orders.py:" in record.trace and "map_order" in record.trace


def test_a_rejected_order_keeps_only_allow_listed_fields():
    """Ids, times, statuses, SKUs, quantities and amounts stay; buyer and address do not."""
    odd = variant(programs=5, buyer={"buyerName": "Erika Mustermann",
                                     "buyerEmail": "erika@example.invalid"})
    _, [record] = map_orders([odd])
    kept = record.raw
    assert kept["orderId"] == ORDER["orderId"] and kept["programs"] == 5
    assert kept["orderItems"][0]["product"]["sellerSku"] == "MUG-1"
    assert kept["orderItems"][0]["quantityOrdered"] == 2
    assert kept["proceeds"]["grandTotal"] == {"amount": "27.00", "currencyCode": "EUR"}
    assert kept["buyer"] == "<object>" and kept["recipient"] == "<object>"
    assert kept["orderItems"][0]["product"]["title"] == "<string>"
    text = repr(kept)
    for personal in ("Erika", "erika@", "Heidestr", "Köln", "51147", "E. M."):
        assert personal not in text


def test_an_exception_message_never_carries_the_value_that_caused_it():
    """A message such as int()'s quotes the bad value, which may be a buyer's name."""
    from marketsync.core.types import RejectedRecord

    try:
        int("Erika Mustermann")
    except ValueError as error:
        record = RejectedRecord.from_exception("1", error)
    assert "Erika" not in record.reason and record.reason.startswith("ValueError: ")
    try:
        "x".get("y")  # type: ignore[attr-defined]
    except AttributeError as error:
        record = RejectedRecord.from_exception("1", error)
    assert record.reason == "AttributeError: 'str' object has no attribute '…'"


def test_item_tax_comes_from_the_tax_entry_of_the_item_proceeds():
    """Amazon reports an item's VAT as the TAX entry of its proceeds breakdown; an item
    without one (US sales tax Amazon keeps) has no tax; a broken one is refused."""
    with_tax = copy.deepcopy(ORDER)
    with_tax["orderItems"][0]["proceeds"] = {
        "proceedsTotal": {"amount": "18.00", "currencyCode": "EUR"},
        "breakdowns": [{"type": "ITEM", "subtotal": {"amount": "15.13", "currencyCode": "EUR"}},
                       {"type": "TAX", "subtotal": {"amount": "2.87", "currencyCode": "EUR"}}]}
    assert map_order(with_tax).items[0].tax.amount == Decimal("2.87")
    assert map_order(ORDER).items[0].tax is None
    broken = copy.deepcopy(with_tax)
    broken["orderItems"][0]["proceeds"]["breakdowns"][1]["subtotal"] = {"amount": "x"}
    with pytest.raises(Malformed, match=r"orderItems\[0\].proceeds.breakdowns\[1\].subtotal"):
        map_order(broken)


def test_the_simulator_reports_vat_inside_eu_prices_and_none_for_the_us():
    """The simulator's item proceeds, as the plugin maps them: DE prices carry 19 % VAT
    (18.00 gross -> 2.87 tax), US prices none."""
    from marketsync.plugins.amazon.sandbox.orders import included_tax

    assert included_tax(Decimal("18.00"), "DE") == Decimal("2.87")
    assert included_tax(Decimal("12.00"), "UK") == Decimal("2.00")
    assert included_tax(Decimal("10.00"), "US") is None
