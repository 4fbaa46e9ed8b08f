"""MCF for any order: the request from the stored recipient and the contact settings, and
tracking that comes back to the order and to the channel the order came from."""

from __future__ import annotations

from datetime import timedelta

import base64

import pytest
from sqlalchemy import select

from marketsync.core.domain import fulfillment, inventory, orders, pii, recipients
from marketsync.core.store.integrations import ensure_integration
from marketsync.core.store.models import Listing, Order, ShipmentRow
from marketsync.core.types import (
    Address,
    Buyer,
    ChannelOrder,
    ChannelOrderItem,
    Fulfillment,
    OrderStatus,
    PackageTracking,
    TrackingInfo,
)

from .test_orders import T0, channel_order, level, order_id

CIPHER = pii.PiiCipher.from_text(base64.b64encode(bytes(range(32))).decode())
ADDRESS = Address(name="Ada Buyer", line1="1 Example Street", city="London",
                  postal_code="SW1A 1AA", country_code="GB")


def fba_integration(session) -> int:
    """amazon-uk with an FBA listing of SKU-1 (the units MCF ships)."""
    uk = ensure_integration(session, alias="amazon-uk", channel="amazon", account="acme",
                            marketplace="UK")
    product = inventory.ensure_product(session, "SKU-1")
    inventory.set_on_hand(session, "SKU-1", 10)
    session.add(Listing(integration_id=uk, channel_sku="SKU-1-FBA", product_id=product.id,
                        fulfillment=Fulfillment.FBA))
    session.flush()
    return uk


def shipped(reference: str, tracking: str = "TBA123") -> TrackingInfo:
    return TrackingInfo(fulfillment_order_id=reference, status="COMPLETE", packages=(
        PackageTracking(carrier="AMZN_UK", tracking_number=tracking,
                        shipped_at=T0 + timedelta(days=1)),))


@pytest.mark.parametrize("mode, phone, email", [
    ("prefill", "+44 20 7946 0000", "ada@example.org"),   # the buyer's own win
    ("overwrite", "+49 30 123456", "shop@example.com"),   # ours, always
])
def test_the_request_takes_the_recipient_and_the_contact_by_mode(store, mode, phone, email):
    def work(session):
        uk = fba_integration(session)
        buyer, address = recipients.checked(recipients.Recipient(
            name="Ada Buyer", email="ada@example.org", phone="+44 20 7946 0000",
            line1="1 Example Street", city="London", postal_code="SW1A 1AA", country_code="gb"))
        oid = orders.add_manual_order(session, "PHONE-1", [("SKU-1", 2)], buyer=buyer,
                                      address=address, cipher=CIPHER)
        orders.fulfill_mcf(session, oid, uk)
        contact = fulfillment.Contact("+49 30 123456", "shop@example.com", mode)
        requests, problems = fulfillment.unsent(session, uk, CIPHER, contact)
        assert problems == {}
        [request] = requests
        assert (request.address.name, request.address.country_code) == ("Ada Buyer", "GB")
        assert request.address.phone == phone
        assert request.notification_emails == (email,)
        assert [(line.channel_sku, line.quantity) for line in request.lines] == [("SKU-1-FBA", 2)]
    store.run_blocking(work)


def test_without_a_buyer_phone_or_email_the_contact_fills_in(store):
    def work(session):
        uk = fba_integration(session)
        oid = orders.add_manual_order(session, "PHONE-2", [("SKU-1", 1)], address=ADDRESS,
                                      cipher=CIPHER)
        orders.fulfill_mcf(session, oid, uk)
        [request], _ = fulfillment.unsent(session, uk, CIPHER,
                                          fulfillment.Contact("+49 30 1", "shop@example.com"))
        assert (request.address.phone, request.notification_emails) == (
            "+49 30 1", ("shop@example.com",))
        [bare], _ = fulfillment.unsent(session, uk, CIPHER)
        assert (bare.address.phone, bare.notification_emails) == (None, ())
    store.run_blocking(work)


def test_an_order_without_an_address_is_not_sent_and_says_why(store):
    def work(session):
        uk = fba_integration(session)
        oid = orders.add_manual_order(session, "PHONE-3", [("SKU-1", 1)])
        reference = orders.fulfill_mcf(session, oid, uk)
        requests, problems = fulfillment.unsent(session, uk, CIPHER)
        assert requests == [] and "no shipping address" in problems[reference]
    store.run_blocking(work)


def test_tracking_of_another_channels_order_becomes_its_shipment_there(store):
    """An Amazon DE merchant order shipped by MCF from the UK: the tracking ships the order
    and is queued, once, as its shipment for amazon-de to confirm."""
    def work(session):
        uk = fba_integration(session)
        de = ensure_integration(session, alias="amazon-de", channel="amazon", account="acme",
                                marketplace="DE")
        incoming = channel_order()
        orders.apply_channel_orders(session, de, [ChannelOrder(
            **{**{f: getattr(incoming, f) for f in incoming.__slots__},
               "buyer": Buyer(name="Ada Buyer"), "shipping_address": ADDRESS,
               "pii_available": True})], cipher=CIPHER)
        oid = order_id(session)
        reference = orders.fulfill_mcf(session, oid, uk)
        assert level(session) == (10, 0, 10)  # the units leave Amazon's warehouse, not ours
        assert orders.apply_tracking(session, uk, [shipped(reference)]) == {de}
        assert orders.apply_tracking(session, uk, [shipped(reference)]) == set()
        [pending] = orders.pending_shipments(session, de)
        assert (pending.shipment.carrier, pending.shipment.tracking_number) == ("AMZN_UK", "TBA123")
        assert [(l.channel_item_id, l.quantity) for l in pending.shipment.lines] == [("i1", 2)]
        assert pending.shipment.channel_order_id == "A-1"
        assert session.get(Order, oid).status is OrderStatus.SHIPPED
        assert level(session) == (10, 0, 10)
    store.run_blocking(work)


def test_tracking_of_a_manual_order_is_its_shipment_with_nothing_to_tell(store):
    def work(session):
        uk = fba_integration(session)
        oid = orders.add_manual_order(session, "PHONE-4", [("SKU-1", 1)], address=ADDRESS,
                                      cipher=CIPHER)
        reference = orders.fulfill_mcf(session, oid, uk)
        assert orders.apply_tracking(session, uk, [shipped(reference)]) == set()
        row = session.execute(select(ShipmentRow)).scalar_one()
        assert (row.tracking_number, row.confirm_state) == ("TBA123", "confirmed")
        order = session.get(Order, oid)
        assert order.status is OrderStatus.SHIPPED and order.pii_purge_after is not None
    store.run_blocking(work)


def test_recipient_checks_name_every_field_at_fault():
    with pytest.raises(ValueError) as caught:
        recipients.checked(recipients.Recipient(email="nope", line1="1 Road",
                                                country_code="Germany"))
    message = str(caught.value)
    for part in ("e-mail 'nope'", "recipient's name", "city or a postal code",
                 "'GERMANY' is not a two-letter code"):
        assert part in message
    assert recipients.checked(recipients.Recipient(name=" ", email="")) == (None, None)
    buyer, address = recipients.checked(recipients.Recipient(name="Kim", email="k@example.org"))
    assert buyer == Buyer(name="Kim", email="k@example.org") and address is None


def test_a_manual_recipient_needs_the_pii_key(store):
    def work(session):
        inventory.ensure_product(session, "SKU-1")
        with pytest.raises(ValueError, match="only encrypted"):
            orders.add_manual_order(session, "PHONE-5", [("SKU-1", 1)], address=ADDRESS)
    store.run_blocking(work)


def test_a_manual_recipient_is_stored_sealed_and_purged(store):
    """Like a channel's buyer data: nothing in clear in the row, gone after the purge date."""
    def work(session):
        inventory.ensure_product(session, "SKU-1")
        oid = orders.add_manual_order(session, "PHONE-6", [("SKU-1", 1)],
                                      buyer=Buyer(name="Ada Buyer", email="ada@example.org"),
                                      address=ADDRESS, cipher=CIPHER)
        order = session.get(Order, oid)
        for column in pii.PII_COLUMNS[:2] + ("ship_to_address",):
            assert b"Ada" not in bytes(getattr(order, column))
        orders.ship_order(session, oid, carrier="DHL", tracking_number="T1")
        assert pii.purge_due(session, order.pii_purge_after + timedelta(seconds=1)) == 1
        session.flush()
        session.expire(order)
        assert order.ship_to_address is None and order.buyer_name is None
    store.run_blocking(work)
