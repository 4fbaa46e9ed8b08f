"""The built-in ``manual`` channel: orders entered by hand or from CSV, no remote side.

It lets a seller use marketsync's stock master and Multi-Channel Fulfillment with a
shop that has no API of its own (a market stall, phone orders): orders come in through
``marketsync orders add`` / CSV, and there is nothing to push to, so every push and
shipment is acknowledged at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from marketsync.core import clock, hookimpl
from marketsync.core.types import (
    AccountInfo,
    ChannelInfo,
    Integration,
    ItemResult,
    JobDefault,
    Marketplace,
    Priority,
    PriceUpdate,
    Shipment,
    ShipmentConfirmation,
    StockUpdate,
    Submission,
)

CHANNEL = "manual"

INFO = ChannelInfo(
    name=CHANNEL,
    title="Manual orders (CLI and CSV)",
    marketplaces={"LOCAL": Marketplace(code="LOCAL", id="LOCAL", name="Local orders")},
    jobs=(
        JobDefault(kind="push_stock", every=3600, priority=Priority.URGENT, timeout=60),
        JobDefault(kind="confirm_shipment", every=3600, priority=Priority.URGENT, timeout=60),
    ),
)


@hookimpl
def channel_info() -> ChannelInfo:
    return INFO


@hookimpl
def check_credentials(integration: Integration) -> AccountInfo:
    return AccountInfo(seller_id=None, marketplaces=("LOCAL",))


def _accept_all(kind: str, skus: Sequence[str]) -> Submission:
    return Submission(
        kind=kind,
        channel_id=f"manual-{kind}-{clock.timestamp():.6f}",
        channel_skus=tuple(skus),
        submitted_at=clock.now(),
        poll_after=0,
        results=tuple(ItemResult(channel_sku=sku, accepted=True) for sku in skus),
    )


@hookimpl
def push_stock(integration: Integration, updates: Sequence[StockUpdate]) -> Submission:
    return _accept_all("stock", [u.channel_sku for u in updates])


@hookimpl
def push_prices(integration: Integration, updates: Sequence[PriceUpdate]) -> Submission:
    return _accept_all("prices", [u.channel_sku for u in updates])


@hookimpl
def confirm_shipment(integration: Integration, shipment: Shipment) -> ShipmentConfirmation:
    return ShipmentConfirmation(key=shipment.key, confirmed=True)
