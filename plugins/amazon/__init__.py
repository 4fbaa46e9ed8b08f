"""The Amazon channel plugin (Selling Partner API): hook implementations only.

Each hook hands over to the module that knows its part of SP-API; see ``manifest.py``
for what the channel tells the core and ``client.py`` for how calls are made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from marketsync.core import hookimpl
from marketsync.core.types import (
    AccountInfo,
    ChannelInfo,
    ChannelListing,
    ChannelOrder,
    ChannelStock,
    Cursor,
    FulfillmentRef,
    FulfillmentRequest,
    Integration,
    Notice,
    Page,
    PriceUpdate,
    Shipment,
    ShipmentConfirmation,
    StockUpdate,
    Submission,
    SubmissionReport,
    TrackingInfo,
)
from marketsync.plugins.amazon import (
    connect,
    feeds,
    fulfillment,
    inventory,
    listings,
    manifest,
    order_report,
    orders,
    reports,
    shipments,
)


@hookimpl
def channel_info() -> ChannelInfo:
    return manifest.INFO


@hookimpl
async def check_credentials(integration: Integration) -> AccountInfo:
    return await connect.check(integration)


@hookimpl
def authorization_url(integration: Integration, state: str, redirect_uri: str) -> str:
    return connect.consent_url(integration, state, redirect_uri=redirect_uri,
                               draft=bool(integration.settings.get("draft_app", False)))


@hookimpl
async def complete_authorization(integration: Integration, params: Mapping[str, str],
                                 redirect_uri: str) -> Mapping[str, str]:
    authorization = await connect.redeem(integration, params, redirect_uri)
    return authorization.credentials()


@hookimpl
async def import_orders(integration: Integration, integrations: Sequence[Integration],
                        cursor: Cursor) -> Page[ChannelOrder]:
    """Account-scoped (``manifest.JOBS``): one searchOrders serves every marketplace; an
    account's first import reads the all-orders report instead (``order_report.py``)."""
    if order_report.wanted(cursor, integrations or (integration,)):
        return await order_report.import_orders(integration, cursor, integrations)
    return await orders.import_orders(integration, cursor, integrations)


@hookimpl
async def fetch_record(integration: Integration, kind: str, record_id: str) -> Page[Any]:
    if kind != "import_orders":
        return Page(items=(), done=True)  # listings and stock come from reports: no single fetch
    return await orders.fetch_order(integration, record_id)


@hookimpl
async def import_products(integration: Integration, cursor: Cursor) -> Page[ChannelListing]:
    return await reports.import_products(integration, cursor)


@hookimpl
async def import_stock(integration: Integration, cursor: Cursor) -> Page[ChannelStock]:
    return await inventory.import_stock(integration, cursor)


@hookimpl
async def push_stock(integration: Integration, updates: Sequence[StockUpdate]) -> Submission:
    return await listings.push_stock(integration, updates)


@hookimpl
async def push_prices(integration: Integration, updates: Sequence[PriceUpdate]) -> Submission:
    return await listings.push_prices(integration, updates)


@hookimpl
async def poll_submission(integration: Integration, submission: Submission) -> SubmissionReport:
    return await feeds.poll_submission(integration, submission)


@hookimpl
async def confirm_shipment(integration: Integration, shipment: Shipment) -> ShipmentConfirmation:
    return await shipments.confirm_shipment(integration, shipment)


@hookimpl
async def create_fulfillment(integration: Integration, request: FulfillmentRequest) -> bool:
    return await fulfillment.create_fulfillment_order(integration, request)


@hookimpl
async def fetch_tracking(integration: Integration,
                         fulfillments: Sequence[FulfillmentRef]) -> Sequence[TrackingInfo]:
    return await fulfillment.fetch_tracking(integration, fulfillments)


@hookimpl
async def subscribe_notifications(integration: Integration, queue_url: str) -> Sequence[str]:
    from marketsync.plugins.amazon import notifications

    return await notifications.subscribe(integration, queue_url)


@hookimpl
def read_notification(body: str) -> Notice:
    from marketsync.plugins.amazon import notifications

    return notifications.read_notification(body)


@hookimpl
async def unsubscribe_notifications(integration: Integration) -> Sequence[str]:
    from marketsync.plugins.amazon import notifications

    return await notifications.unsubscribe(integration)


@hookimpl
def sandbox_app(scenario: Any) -> Any:
    """The simulator, imported only when asked for: the daemon never loads it otherwise."""
    from marketsync.plugins.amazon.sandbox import World, create_app, load_scenario
    from marketsync.plugins.amazon.sandbox.scenario import SCENARIOS

    return create_app(World(load_scenario(scenario or SCENARIOS / "default.yaml")))


@hookimpl
def register_commands(cli) -> None:
    """``marketsync sandbox serve``: the simulator on a loopback port."""
    from marketsync.plugins.amazon.cli import register

    register(cli)
