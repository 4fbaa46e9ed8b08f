"""Correcting a shipment: same key and package, new tracking, told again, stock untouched."""

from __future__ import annotations


import pytest
from sqlalchemy import func, select

from marketsync.core.domain import orders, shipments
from marketsync.core.store.models import ShipmentRow, StockMovement
from marketsync.core.types import Shipment, ShipmentConfirmation, ShipmentLine

from .test_orders import channel_order, level, order_id, setup_world


def shipped_and_confirmed(session, tracking="1Z-TYPO", **lines) -> tuple[int, str]:
    integration = setup_world(session)
    orders.apply_channel_orders(session, integration, [channel_order(quantity=3)])
    oid = order_id(session)
    key = orders.ship_order(session, oid, carrier="UPS", tracking_number=tracking, **lines)
    assert orders.mark_shipment_confirmed(session, key, ShipmentConfirmation(key=key,
                                                                             confirmed=True))
    return oid, key


def sent(session, key: str) -> Shipment:
    return next(p.shipment for p in orders.pending_shipments(session) if p.shipment.key == key)


def test_a_correction_requeues_the_same_shipment_without_moving_stock(store):
    """The confirmed shipment is pending again with the new tracking number and its old
    key (hence the same channel package); no ledger row is added, nothing ships twice."""
    def work(session):
        oid, key = shipped_and_confirmed(session)
        movements = session.execute(select(func.count(StockMovement.id))).scalar()
        before = level(session)
        assert shipments.correct_shipment(session, oid, carrier="UPS",
                                          tracking_number="1Z-RIGHT") == key
        row = session.execute(select(ShipmentRow)).scalar_one()
        assert (row.key, row.tracking_number, row.confirm_state) == (key, "1Z-RIGHT", "pending")
        assert sent(session, key).tracking_number == "1Z-RIGHT"
        assert level(session) == before
        assert session.execute(select(func.count(StockMovement.id))).scalar() == movements
        # the same correction again, or shipping with the corrected number: no change
        assert shipments.correct_shipment(session, oid, carrier="UPS",
                                          tracking_number="1Z-RIGHT") == key
        assert orders.ship_order(session, oid, carrier="UPS", tracking_number="1Z-RIGHT") == key
        assert session.execute(select(func.count(ShipmentRow.id))).scalar() == 1
    store.run_blocking(work)


def test_an_answer_for_the_old_tracking_number_does_not_confirm_the_correction(store):
    """A correction made while the old number was in flight: the channel's yes (or a final
    no) for the old number leaves the corrected shipment pending, to be sent again."""
    def work(session):
        oid, key = shipped_and_confirmed(session)
        shipments.correct_shipment(session, oid, carrier="UPS", tracking_number="1Z-SECOND")
        in_flight = sent(session, key)
        shipments.correct_shipment(session, oid, carrier="DHL", tracking_number="JJD-THIRD")
        yes = ShipmentConfirmation(key=key, confirmed=True)
        assert orders.mark_shipment_confirmed(session, key, yes, in_flight) is False
        orders.mark_shipment_failed(session, key, "refused", final=True, sent=in_flight)
        assert session.execute(select(ShipmentRow.confirm_state)).scalar_one() == "pending"
        now_sent = sent(session, key)
        assert (now_sent.carrier, now_sent.tracking_number) == ("DHL", "JJD-THIRD")
        assert orders.mark_shipment_confirmed(session, key, yes, now_sent) is True
    store.run_blocking(work)


def test_several_shipments_need_the_old_tracking_number(store):
    def work(session):
        oid, first = shipped_and_confirmed(
            session, lines=[ShipmentLine(channel_item_id="i1", quantity=1)])
        second = orders.ship_order(session, oid, carrier="UPS", tracking_number="1Z-B")
        with pytest.raises(ValueError, match="2 shipments .*old tracking number"):
            shipments.correct_shipment(session, oid, carrier="UPS", tracking_number="1Z-C")
        with pytest.raises(ValueError, match="no shipment with tracking number 'NOPE'"):
            shipments.correct_shipment(session, oid, carrier="UPS", tracking_number="1Z-C",
                                       was="NOPE")
        assert shipments.correct_shipment(session, oid, carrier="UPS", tracking_number="1Z-C",
                                          was="1Z-B") == second
        numbers = dict(session.execute(select(ShipmentRow.key, ShipmentRow.tracking_number)).all())
        assert numbers == {first: "1Z-TYPO", second: "1Z-C"}
    store.run_blocking(work)


def test_an_order_without_a_shipment_cannot_be_corrected(store):
    def work(session):
        integration = setup_world(session)
        orders.apply_channel_orders(session, integration, [channel_order()])
        with pytest.raises(orders.OrderStateError, match="no shipment to correct"):
            shipments.correct_shipment(session, order_id(session), carrier="UPS",
                                       tracking_number="1Z")
        with pytest.raises(ValueError, match="carrier and a tracking number"):
            shipments.correct_shipment(session, order_id(session), carrier="UPS",
                                       tracking_number=" ")
    store.run_blocking(work)
