"""confirm_shipment (exactly once) and MCF fulfilment orders with their tracking."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import trio

from marketsync.core import clock
from marketsync.core.errors import RecordRejected
from marketsync.core.types import (
    Address,
    FulfillmentLine,
    FulfillmentRef,
    FulfillmentRequest,
    Shipment,
    ShipmentLine,
)
from marketsync.plugins.amazon import fulfillment, shipments

from .conftest import BASE_URL


async def unshipped_order(integration, items=None) -> dict:
    """A merchant-fulfilled order placed through the simulator, past its pending time."""
    control = httpx.AsyncClient(transport=integration.http._transport, base_url=BASE_URL)
    answer = await control.post("/_sandbox/orders", json={
        "marketplace": integration.marketplace, "items": items or {"MUG-1": 2, "KETTLE-1": 1},
        "fulfilledBy": "MERCHANT"})
    assert answer.status_code == 201, answer.text
    await trio.sleep(3600)
    return answer.json()


def shipment(order: dict, key: str = "ship-1", carrier: str = "DHL", **changes) -> Shipment:
    values = dict(
        key=key, channel_order_id=order["orderId"], marketplace="DE", carrier=carrier,
        tracking_number="00340434161094042557", shipped_at=clock.now() - timedelta(minutes=5),
        lines=tuple(ShipmentLine(channel_item_id=i["orderItemId"], quantity=i["quantityOrdered"])
                    for i in order["orderItems"]))
    values.update(changes)
    return Shipment(**values)


def accepted(world, order_id):
    return [c for c in world.confirmations if c["orderId"] == order_id and c["accepted"]]


async def test_confirming_twice_ships_once(make_integration, world, autojump_clock):
    """A retry of the same shipment key names the same package: never a second one."""
    integration = make_integration("DE")
    order = await unshipped_order(integration)
    first = await shipments.confirm_shipment(integration, shipment(order))
    assert first.confirmed and not first.already_confirmed
    second = await shipments.confirm_shipment(integration, shipment(order))
    assert second.confirmed
    assert len(world.orders[order["orderId"]].packages) == 1
    assert world.orders[order["orderId"]].status_at(clock.now()) == "SHIPPED"


async def test_an_unknown_carrier_is_sent_as_other_with_its_name(make_integration, world,
                                                                 autojump_clock):
    integration = make_integration("DE")
    order = await unshipped_order(integration)
    await shipments.confirm_shipment(integration, shipment(order, carrier="Spedition Meier"))
    detail = accepted(world, order["orderId"])[0]["request"]["packageDetail"]
    assert (detail["carrierCode"], detail["carrierName"]) == ("Other", "Spedition Meier")
    assert detail["packageReferenceId"] == shipments.package_reference("ship-1")


async def test_a_shipment_amazon_refuses_is_rejected_for_good(make_integration, world,
                                                              autojump_clock):
    integration = make_integration("DE")
    order = await unshipped_order(integration)
    line = order["orderItems"][0]
    too_many = (ShipmentLine(channel_item_id=line["orderItemId"], quantity=99),)
    with pytest.raises(RecordRejected, match="exceeds"):
        await shipments.confirm_shipment(integration, shipment(order, lines=too_many))
    assert not accepted(world, order["orderId"])


async def test_a_corrected_tracking_number_edits_the_package(make_integration, world,
                                                             autojump_clock):
    """The same shipment key with a new tracking number is an edit of the confirmed package."""
    integration = make_integration("DE")
    order = await unshipped_order(integration)
    await shipments.confirm_shipment(integration, shipment(order, tracking_number="0034-TYPO"))
    fixed = await shipments.confirm_shipment(integration, shipment(order, carrier="UPS"))
    assert fixed.confirmed and not fixed.already_confirmed
    packages = world.orders[order["orderId"]].packages
    assert [(p["carrierCode"], p["trackingNumber"]) for p in packages] == [
        ("UPS", "00340434161094042557")]
    assert packages[0]["edits"] == 1


def test_package_reference_is_stable_and_numeric():
    reference = shipments.package_reference("order-7/shipment-2")
    assert reference == shipments.package_reference("order-7/shipment-2")
    assert reference.isdigit() and int(reference) > 0
    assert reference != shipments.package_reference("order-7/shipment-3")


def mcf_request(order_id: str = "MS-1001", sku: str = "SPORK-FBA") -> FulfillmentRequest:
    return FulfillmentRequest(
        fulfillment_order_id=order_id, marketplace="DE", ordered_at=clock.now(),
        address=Address(name="Erika Mustermann", line1="Heidestr. 17", city="Köln",
                        postal_code="51147", country_code="DE"),
        lines=(FulfillmentLine(channel_sku=sku, line_id="1", quantity=2),))


async def test_mcf_order_is_created_once_and_tracked(make_integration, world, autojump_clock):
    integration = make_integration("DE")
    assert await fulfillment.create_fulfillment_order(integration, mcf_request()) is True
    assert await fulfillment.create_fulfillment_order(integration, mcf_request()) is False
    refs = [FulfillmentRef(fulfillment_order_id="MS-1001", marketplace="DE"),
            FulfillmentRef(fulfillment_order_id="MS-UNKNOWN", marketplace="DE")]
    early = await fulfillment.fetch_tracking(integration, refs)
    assert [(t.fulfillment_order_id, t.packages) for t in early] == [("MS-1001", ())]
    await trio.sleep(7 * 3600)
    later = await fulfillment.fetch_tracking(integration, refs)
    assert len(later) == 1 and later[0].status == "Complete"
    package = later[0].packages[0]
    assert package.carrier == "DHL" and package.tracking_number and package.shipped_at


async def test_mcf_order_for_a_merchant_sku_is_rejected(make_integration, autojump_clock):
    with pytest.raises(RecordRejected, match="not an FBA SKU"):
        await fulfillment.create_fulfillment_order(make_integration("DE"),
                                                   mcf_request("MS-2", sku="MUG-1"))


async def test_a_shipment_without_lines_ships_what_is_left(make_integration, world,
                                                           autojump_clock):
    """No lines from the core: the whole order (every unshipped unit), exactly once."""
    integration = make_integration("DE")
    order = await unshipped_order(integration, {"MUG-1": 3})
    whole = shipment(order, key="whole", lines=())
    first = await shipments.confirm_shipment(integration, whole)
    assert first.confirmed and not first.already_confirmed
    sent = accepted(world, order["orderId"])[0]["request"]["packageDetail"]["orderItems"]
    assert sent == [{"orderItemId": order["orderItems"][0]["orderItemId"], "quantity": 3}]
    await trio.sleep(600)  # past the data lag: Amazon now shows the package
    again = await shipments.confirm_shipment(integration, whole)
    assert again.already_confirmed
    assert len(accepted(world, order["orderId"])) == 1
