"""The eBay channel plugin (Sell Inventory and Fulfillment REST APIs): hooks only.

Each hook hands over to the module that knows its part of eBay; ``manifest.py`` says what
the channel tells the core and ``client.py`` how calls are made. Registered through the
``marketsync`` entry point group like any third-party plugin.
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
    Cursor,
    Integration,
    Page,
    PriceUpdate,
    Shipment,
    ShipmentConfirmation,
    StockUpdate,
    Submission,
    SubmissionReport,
)
from marketsync.plugins.ebay import connect, manifest, orders, products, push, shipments


@hookimpl
def channel_info() -> ChannelInfo:
    return manifest.INFO


@hookimpl
async def check_credentials(integration: Integration) -> AccountInfo:
    return await connect.check(integration)


@hookimpl
def authorization_url(integration: Integration, state: str, redirect_uri: str) -> str:
    # eBay sends the seller to the RuName's accept URL, registered on eBay's side, which
    # must be ``redirect_uri``; the URL itself never travels
    return connect.consent_url(integration, state)


@hookimpl
async def complete_authorization(integration: Integration, params: Mapping[str, str],
                                 redirect_uri: str) -> Mapping[str, str]:
    return await connect.redeem(integration, params)


@hookimpl
async def import_orders(integration: Integration, integrations: Sequence[Integration],
                        cursor: Cursor) -> Page[ChannelOrder]:
    """Account-scoped (``manifest.JOBS``): one getOrders serves every eBay site."""
    return await orders.import_orders(integration, cursor, integrations)


@hookimpl
async def import_products(integration: Integration, cursor: Cursor) -> Page[ChannelListing]:
    return await products.import_products(integration, cursor)


@hookimpl
async def push_stock(integration: Integration, updates: Sequence[StockUpdate]) -> Submission:
    return await push.push_stock(integration, updates)


@hookimpl
async def push_prices(integration: Integration, updates: Sequence[PriceUpdate]) -> Submission:
    return await push.push_prices(integration, updates)


@hookimpl
async def poll_submission(integration: Integration, submission: Submission) -> SubmissionReport:
    """eBay answers pushes at once; a stored submission already holds its results."""
    return SubmissionReport(done=True, results=submission.results)


@hookimpl
async def confirm_shipment(integration: Integration, shipment: Shipment) -> ShipmentConfirmation:
    return await shipments.confirm_shipment(integration, shipment)


@hookimpl
def sandbox_app(scenario: Any) -> Any:
    """The simulator, imported only when asked for."""
    from marketsync.plugins.ebay.sandbox import SCENARIOS, World, create_app, load_scenario

    return create_app(World(load_scenario(scenario or SCENARIOS / "default.yaml")))


@hookimpl
def register_commands(cli) -> None:
    """``marketsync sandbox ebay``: the simulator on a loopback port."""
    from marketsync.plugins.ebay.cli import register

    register(cli)
