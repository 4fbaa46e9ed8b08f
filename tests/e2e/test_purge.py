"""Every order's buyer data is purged on time, with orders as the simulator makes them.

Issue 12: FBA orders have no ``packages[]`` and Amazon never says when they were
delivered, so they kept buyer data for ever (after 400 simulated days 85 of 91 orders
still had it); the old test used a synthetic order that already had ``delivered_at``.
Here the daemon imports a simulated day (FBA orders that ship, cancellations, merchant
orders nobody ships), then the clock moves on and the daemon's purge runs.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio
from sqlalchemy import select

from marketsync.core import clock
from marketsync.core.domain import pii
from marketsync.core.store.models import Order
from marketsync.core.types import Fulfillment, OrderStatus
from marketsync.plugins.amazon import order_report

from .conftest import SCENARIO


@pytest.fixture
def scenario_changes():
    """Two days of history in which FBA orders ship within hours and some are cancelled."""
    generator = dict(SCENARIO["generator"], fba_ship_hours=[2, 8], cancel_by_buyer=0.1,
                     fba_share=0.4)
    return {"generator": generator}


def snapshot(session):
    rows = session.execute(select(Order)).scalars().all()
    return [(o.channel_order_id, o.fulfillment, o.status, o.purchased_at, o.pii_purge_after,
             any(getattr(o, c) is not None for c in pii.PII_COLUMNS)) for o in rows]


async def test_buyer_data_of_every_kind_of_order_is_purged_on_time(make_daemon, world, e2e_clock,
                                                                   monkeypatch):
    # the history through searchOrders, which brings every kind of order with its buyer;
    # the report backfill stores none for shipped and cancelled orders
    # (tests/e2e/test_order_backfill.py)
    monkeypatch.setattr(order_report, "ENABLED", False)
    daemon = make_daemon(integrations=[("amazon-de", "eu", "DE"), ("amazon-au", "fe", "AU")])
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.serve)
        await trio.sleep(1800)  # the first import brings the two days of history
        await daemon.stop(grace=1)
        nursery.cancel_scope.cancel()
    imported_at = clock.now()
    orders = await daemon.store.read(snapshot)
    holding = [o for o in orders if o[5]]
    fba_shipped = [o for o in holding if o[1] is Fulfillment.FBA and o[2] is OrderStatus.SHIPPED]
    canceled = [o for o in holding if o[2] is OrderStatus.CANCELED]
    open_mfn = [o for o in holding if o[1] is Fulfillment.MFN and o[2] is OrderStatus.NEW]
    assert len(fba_shipped) >= 3 and canceled and len(open_mfn) >= 3, \
        (len(fba_shipped), len(canceled), len(open_mfn))
    assert any(not o[5] for o in orders)  # the AU account's orders came without buyer data
    # every order holding buyer data has a purge date, none later than the hard cap
    assert all(o[4] is not None and o[4] <= o[3] + pii.HARD_CAP for o in holding)
    # an FBA order counts its 30 days from the import that saw it shipped (Amazon ships
    # within 8 h here; the import is at most ~2 days after), not from the hard cap
    assert all(o[4] <= o[3] + pii.RETENTION + timedelta(days=2, hours=9) for o in fba_shipped)
    assert all(o[4] <= imported_at + pii.RETENTION for o in canceled)
    assert all(o[4] == o[3] + pii.HARD_CAP for o in open_mfn)

    # 30 days after the last FBA shipment and cancellation: those are purged, merchant
    # orders still waiting to be shipped keep the address they will be shipped to
    ship_dates = [o[4] for o in fba_shipped + canceled]
    await trio.sleep((max(ship_dates) - clock.now()).total_seconds() + 3600)
    purged = await daemon.store.run(pii.purge_due, clock.now())
    after = {o[0]: o for o in await daemon.store.read(snapshot)}
    assert purged >= len(fba_shipped) + len(canceled)
    assert not any(after[o[0]][5] for o in fba_shipped + canceled)
    assert all(after[o[0]][5] for o in open_mfn
               if o[3] + pii.HARD_CAP > clock.now())
    report = await daemon.store.read(pii.retention_report, clock.now())
    assert report.holding > 0 and report.next_due is not None and report.overdue == 0

    # the hard cap: 60 days after the last purchase, no order holds buyer data
    last_purchase = max(o[3] for o in orders)
    await trio.sleep((last_purchase + pii.HARD_CAP - clock.now()).total_seconds() + 3600)
    await daemon.store.run(pii.purge_due, clock.now())
    report = await daemon.store.read(pii.retention_report, clock.now())
    assert (report.holding, report.next_due) == (0, None)
    assert clock.now() - imported_at < timedelta(days=62)
