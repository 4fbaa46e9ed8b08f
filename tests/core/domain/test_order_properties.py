"""Any interleaving and repetition of order events keeps the stock arithmetic right.

Rules are synchronous and run units of work directly on a SQLite store of the example's
own (wave2 research §4). After every step: available = on hand - reserved, reserved is the
sum of the open MFN reservations the model expects, the counters equal the ledger's sums,
and no ledger key appears twice.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import func, select

from marketsync.core.domain import inventory, orders
from marketsync.core.store import Store
from marketsync.core.store.integrations import ensure_integration
from marketsync.core.store.models import Order, Product, StockMovement
from marketsync.core.types import (
    ChannelOrder,
    ChannelOrderItem,
    Fulfillment,
    OrderStatus,
    ShipmentLine,
)

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
SKUS = ("P1", "P2")
ORDER_IDS = ("O1", "O2", "O3")
_RANK = {OrderStatus.NEW: 0, OrderStatus.PARTIALLY_SHIPPED: 1, OrderStatus.SHIPPED: 2}


_TEMPLATE: list[Path] = []


def _template() -> Path:
    """One migrated database per test session, copied for every example (migrating
    costs a second; an example should cost milliseconds)."""
    if not _TEMPLATE:
        directory = Path(tempfile.mkdtemp(prefix="orderbook-template-"))
        with Store(f"sqlite:///{directory / 'db.sqlite'}") as template:
            template.upgrade()
        atexit.register(shutil.rmtree, directory, True)
        _TEMPLATE.append(directory / "db.sqlite")
    return _TEMPLATE[0]


class OrderBook(RuleBasedStateMachine):
    """The model: per order its status, item quantities and shipped counts, and whether
    it ever reserved; per product the on-hand count."""

    @initialize()
    def open_store(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        path = Path(self.dir.name) / "db.sqlite"
        shutil.copyfile(_template(), path)
        self.store = Store(f"sqlite:///{path}")

        def world(session):
            integration = ensure_integration(session, alias="ch", channel="amazon",
                                             account="a", marketplace="DE")
            for sku in SKUS:
                inventory.ensure_product(session, sku)
            return integration
        self.integration = self.store.run_blocking(world)
        self.on_hand = {sku: 0 for sku in SKUS}
        #: channel order id -> model of what we know locally
        self.orders: dict[str, dict] = {}
        #: what the channel would currently report per order id
        self.channel: dict[str, ChannelOrder] = {}

    def teardown(self) -> None:
        self.store.close()
        self.dir.cleanup()

    # --- helpers --------------------------------------------------------------------

    def _import(self, incoming: ChannelOrder) -> None:
        self.store.run_blocking(orders.apply_channel_orders, self.integration, [incoming])
        model = self.orders.get(incoming.channel_order_id)
        mfn = incoming.fulfillment is Fulfillment.MFN
        if model is None:
            model = {"status": incoming.status, "mfn": mfn,
                     "items": {i.channel_item_id: [i.channel_sku, i.quantity, 0]
                               for i in incoming.items},
                     "reserved": mfn and incoming.status is not OrderStatus.CANCELED,
                     "released": False}
            self.orders[incoming.channel_order_id] = model
        for item in incoming.items:
            entry = model["items"][item.channel_item_id]
            if model["status"] is not OrderStatus.CANCELED:
                entry[2] = max(entry[2], item.quantity_shipped)
        self._advance(model, incoming.status)

    def _advance(self, model: dict, status: OrderStatus) -> None:
        current = model["status"]
        if current is OrderStatus.CANCELED:
            return
        if status is OrderStatus.CANCELED:
            model["status"] = status
        elif _RANK[status] > _RANK[current]:
            model["status"] = status
        if model["status"] is OrderStatus.SHIPPED:
            for entry in model["items"].values():
                entry[2] = entry[1]
        # stock arithmetic of the model is computed in expected()

    def expected(self) -> dict[str, tuple[int, int]]:
        on_hand = dict(self.on_hand)
        reserved = {sku: 0 for sku in SKUS}
        for model in self.orders.values():
            if not (model["mfn"] and model["reserved"]):
                continue
            for sku, quantity, shipped in model["items"].values():
                on_hand[sku] -= shipped
                if model["status"] in (OrderStatus.NEW, OrderStatus.PARTIALLY_SHIPPED):
                    reserved[sku] += quantity - shipped
        return {sku: (on_hand[sku], reserved[sku]) for sku in SKUS}

    def _order_pk(self, channel_order_id: str) -> int:
        return self.store.run_blocking(lambda s: s.execute(select(Order.id).where(
            Order.channel_order_id == channel_order_id)).scalar_one())

    # --- rules ----------------------------------------------------------------------

    @rule(order_id=st.sampled_from(ORDER_IDS), fba=st.booleans(),
          lines=st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 3)),
                         min_size=1, max_size=2))
    def channel_new_order(self, order_id, fba, lines) -> None:
        if order_id in self.channel:
            return
        incoming = ChannelOrder(
            channel_order_id=order_id, marketplace="DE", status=OrderStatus.NEW,
            channel_status="Unshipped", purchased_at=T0, updated_at=T0,
            fulfillment=Fulfillment.FBA if fba else Fulfillment.MFN,
            items=tuple(ChannelOrderItem(channel_item_id=f"i{n}", channel_sku=sku,
                                         quantity=quantity)
                        for n, (sku, quantity) in enumerate(lines)))
        self.channel[order_id] = incoming
        self._import(incoming)

    @rule(order_id=st.sampled_from(ORDER_IDS))
    def reimport(self, order_id) -> None:
        if order_id in self.channel:
            self._import(self.channel[order_id])

    @rule(order_id=st.sampled_from(ORDER_IDS),
          status=st.sampled_from([OrderStatus.CANCELED, OrderStatus.SHIPPED,
                                  OrderStatus.PARTIALLY_SHIPPED]))
    def channel_changes(self, order_id, status) -> None:
        old = self.channel.get(order_id)
        if old is None or old.status in (OrderStatus.CANCELED, OrderStatus.SHIPPED):
            return
        items = tuple(
            ChannelOrderItem(channel_item_id=i.channel_item_id, channel_sku=i.channel_sku,
                             quantity=i.quantity,
                             quantity_shipped=i.quantity if status is OrderStatus.SHIPPED
                             else min(i.quantity, i.quantity_shipped + 1)
                             if status is OrderStatus.PARTIALLY_SHIPPED else i.quantity_shipped)
            for i in old.items)
        incoming = ChannelOrder(
            channel_order_id=order_id, marketplace="DE", status=status,
            channel_status=status.value, purchased_at=T0, updated_at=T0,
            fulfillment=old.fulfillment, items=items)
        self.channel[order_id] = incoming
        self._import(incoming)

    @rule(order_id=st.sampled_from(ORDER_IDS))
    def cancel_locally(self, order_id) -> None:
        if order_id not in self.orders:
            return
        self.store.run_blocking(orders.cancel_locally, self._order_pk(order_id))
        self._advance(self.orders[order_id], OrderStatus.CANCELED)

    @rule(order_id=st.sampled_from(ORDER_IDS), tracking=st.sampled_from(["T1", "T2"]),
          partial=st.booleans())
    def ship_locally(self, order_id, tracking, partial) -> None:
        model = self.orders.get(order_id)
        if model is None or not model["mfn"] or model["status"] is OrderStatus.CANCELED:
            return
        open_items = [(item_id, e) for item_id, e in model["items"].items() if e[2] < e[1]]
        if not open_items:
            return
        lines = ()
        if partial:
            item_id, entry = open_items[0]
            lines = (ShipmentLine(channel_item_id=item_id, quantity=1),)
        self.store.run_blocking(orders.ship_order, self._order_pk(order_id), carrier="DHL",
                                tracking_number=f"{order_id}-{tracking}-{len(lines)}"
                                f"-{sum(e[2] for e in model['items'].values())}",
                                lines=lines)
        if partial:
            open_items[0][1][2] += 1
            done = all(e[2] >= e[1] for e in model["items"].values())
            self._advance(model, OrderStatus.SHIPPED if done else OrderStatus.PARTIALLY_SHIPPED)
        else:
            self._advance(model, OrderStatus.SHIPPED)

    @rule(sku=st.sampled_from(SKUS), quantity=st.integers(0, 20))
    def stock_set(self, sku, quantity) -> None:
        before = self.store.run_blocking(inventory.stock_level, sku).on_hand
        self.store.run_blocking(inventory.set_on_hand, sku, quantity)
        self.on_hand[sku] += quantity - before

    @rule(sku=st.sampled_from(SKUS), delta=st.integers(-5, 5).filter(bool))
    def stock_adjust(self, sku, delta) -> None:
        if delta < 0 and self.expected()[sku][0] + delta < inventory.ON_HAND_FLOOR:
            with pytest.raises(inventory.BelowFloor):
                self.store.run_blocking(inventory.adjust, sku, delta, reason="prop")
            # a person who insists (--force) may still go below it
            self.store.run_blocking(inventory.adjust, sku, delta, reason="prop", force=True)
        else:
            self.store.run_blocking(inventory.adjust, sku, delta, reason="prop")
        self.on_hand[sku] += delta

    # --- invariants ------------------------------------------------------------------

    @invariant()
    def statuses_only_move_forward(self) -> None:
        actual = self.store.run_blocking(lambda s: dict(s.execute(
            select(Order.channel_order_id, Order.status)).all()))
        assert actual == {oid: model["status"] for oid, model in self.orders.items()}

    @invariant()
    def stock_matches_model_and_ledger(self) -> None:
        def read(session):
            result = {}
            for product in session.execute(select(Product)).scalars():
                result[product.sku] = (product.on_hand, product.reserved,
                                       inventory.ledger_totals(session, product.id))
            keys = session.execute(select(StockMovement.key, func.count())
                                   .group_by(StockMovement.key)
                                   .having(func.count() > 1)).all()
            return result, keys
        actual, duplicated = self.store.run_blocking(read)
        assert duplicated == []
        expected = self.expected()
        for sku in SKUS:
            on_hand, reserved, ledger = actual[sku]
            assert (on_hand, reserved) == ledger, f"{sku}: counters drifted from the ledger"
            assert (on_hand, reserved) == expected[sku], f"{sku}: {actual[sku]} vs model"
            level = self.store.run_blocking(inventory.stock_level, sku)
            assert level.available == max(on_hand - reserved, 0)
            assert level.short == max(reserved - on_hand, 0)
            assert reserved >= 0


OrderBook.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestOrderBook = OrderBook.TestCase
