"""Fixtures for the Amazon plugin's tests: the plugin against the in-process simulator.

Every test talks to a pinned simulated Amazon (``World``) through
``httpx.ASGITransport``, wrapped by the real governed transport and governor, exactly as
the daemon wires it; only the network is missing. Time moves with trio's clock
(``autojump_clock``), so a day of schedule passes in a moment.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from marketsync.core import clock
from marketsync.core.runtime.governor import Governor
from marketsync.core.runtime.http import make_client
from marketsync.core.types import Integration
from marketsync.plugins.amazon import manifest
from marketsync.plugins.amazon.sandbox import World, create_app
from marketsync.plugins.amazon.sandbox.scenario import parse_scenario

START = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
BASE_URL = "http://sandbox.local"
CLIENT_ID = "amzn1.application-oa2-client.plugintest"
CLIENT_SECRET = "amzn1.oa2-cs.v1.plugintest-secret"
APP_ID = "amzn1.sellerapps.app.plugintest"
REDIRECT_URI = "http://127.0.0.1:8470/channels/amazon/callback"
NA, EU, FE, FR = "A1PLUGINNA", "A2PLUGINEU", "A3PLUGINFE", "A4PLUGINFR"
REFRESH = {NA: "Atzr|plugin-na", EU: "Atzr|plugin-eu", FE: "Atzr|plugin-fe", FR: "Atzr|plugin-fr"}
ACCOUNTS = {"na": NA, "eu": EU, "fe": FE, "fr": FR}

SCENARIO: dict[str, Any] = {
    "seed": 4242,
    "history_days": 3,
    "data_lag_seconds": [60, 120],
    "applications": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                      "application_id": APP_ID, "redirect_uris": [REDIRECT_URI]}],
    "accounts": [
        {"seller_id": NA, "region": "NA", "marketplaces": ["US", "CA"], "pii_access": True,
         "refresh_tokens": [REFRESH[NA]], "name": "Plugin NA"},
        {"seller_id": EU, "region": "EU", "marketplaces": ["UK", "DE"], "pii_access": True,
         "refresh_tokens": [REFRESH[EU]], "name": "Plugin EU"},
        {"seller_id": FE, "region": "FE", "marketplaces": ["AU"], "pii_access": False,
         "refresh_tokens": [REFRESH[FE]], "name": "Plugin AU"},
        # a new seller with nothing listed yet: its reports have no rows
        {"seller_id": FR, "region": "EU", "marketplaces": ["FR"], "pii_access": True,
         "refresh_tokens": [REFRESH[FR]], "name": "Plugin FR"},
    ],
    "consent": {"seller_id": EU},
    "catalog": [
        {"sku": "MUG-1", "asin": "B0PLUG0001", "title": "Mug", "mfn_quantity": 5000,
         "handling_time": 1, "ean": "4006381333931",
         "prices": {"US": "10.00", "CA": "13.00", "UK": "8.00", "DE": "9.00", "AU": "15.00"}},
        {"sku": "KETTLE-1", "asin": "B0PLUG0002", "title": "Kettle", "mfn_quantity": 2000,
         "handling_time": 2,
         "prices": {"US": "30.00", "UK": "25.00", "DE": "28.00", "AU": "45.00"}},
        {"sku": "SPORK-FBA", "asin": "B0PLUG0003", "title": "Spork", "fba_quantity": 800,
         "prices": {"US": "5.00", "CA": "6.50", "UK": "4.00", "DE": "4.50", "AU": "8.00"}},
        {"sku": "STOVE-FBA", "asin": "B0PLUG0004", "title": "Stove", "fba_quantity": 300,
         "prices": {"US": "45.00", "UK": "40.00", "DE": "42.00"}},
    ],
    "generator": {"orders_per_day": {"US": 30, "CA": 3, "UK": 8, "DE": 12, "AU": 6},
                  "fba_share": 0.3, "cancel_by_buyer": 0.05, "cancel_by_amazon": 0.02},
}


def scenario(**changes: Any):
    data = copy.deepcopy(SCENARIO)
    data.update(changes)
    return parse_scenario(data, source="tests:plugin")


@pytest.fixture
def scenario_changes() -> dict[str, Any]:
    """Override in a test module to change the scenario."""
    return {}


@pytest.fixture
async def world(scenario_changes: dict[str, Any]) -> World:
    clock.set_start(START)
    return World(scenario(**scenario_changes), base_url=BASE_URL)


@pytest.fixture
def app(world: World):
    return create_app(world)


@pytest.fixture
def governor() -> Governor:
    return Governor()


@pytest.fixture
def make_integration(app, governor: Governor) -> Callable[..., Integration]:
    """``make_integration("DE")`` → an integration of the account that sells there.

    Integrations of one account share ``account_runtime`` (tokens) and, through
    ``bucket_key``, the governor's buckets — as in the daemon.
    """
    runtimes: dict[str, dict[str, Any]] = {}
    clients: list[httpx.AsyncClient] = []

    def make(marketplace: str = "DE", *, account: str | None = None,
             credentials: dict[str, str] | None = None, **settings: Any) -> Integration:
        if account is None:
            account = {"US": "na", "CA": "na", "UK": "eu", "DE": "eu", "AU": "fe", "FR": "fr"}.get(
                marketplace, "eu")
        seller = ACCOUNTS.get(account, EU)
        creds = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                 "refresh_token": REFRESH[seller], "seller_id": seller, "app_id": APP_ID}
        creds.update(credentials or {})
        values = {"orders": "both", "history_days": 30, "inventory": "both",
                  "handling_time_days": 1, "endpoint": BASE_URL}
        values.update(settings)
        integration = Integration(
            alias=f"amazon-{marketplace.lower()}", channel="amazon", account=account,
            marketplace=marketplace, settings=values, credentials=creds,
            account_runtime=runtimes.setdefault(account, {}),
        )
        integration.http = make_client(
            httpx.ASGITransport(app=app), governor,
            bucket_for=lambda operation: manifest.bucket_key(integration, operation),
            plan_for=manifest.INFO.usage_plans.get,
            rate_header=manifest.RATE_LIMIT_HEADER,
        )
        clients.append(integration.http)
        return integration

    return make


def calls(world: World, operation: str | None = None, status: int | None = None) -> list:
    """The simulator's call log, filtered."""
    return [c for c in world.calls
            if (operation is None or c.operation == operation)
            and (status is None or c.status == status)]
