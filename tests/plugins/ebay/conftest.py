"""Fixtures for the eBay plugin's tests: the plugin against the in-process simulator.

As for Amazon: a pinned simulated eBay (``World``) reached through ``httpx.ASGITransport``,
wrapped by the real governed transport and governor; time is trio's ``autojump_clock``.
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
from marketsync.plugins.ebay import manifest
from marketsync.plugins.ebay.sandbox import World, create_app, parse_scenario

START = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
BASE_URL = "http://ebay-sandbox.local"
CLIENT_ID = "marketsy-test-PRD-1111111111-11111111"
CLIENT_SECRET = "PRD-test-secret-1111"
RU_NAME = "marketsync-test-ru"
ACCEPT_URL = "http://127.0.0.1:8470/channels/ebay/callback"
SELLER, OTHER = "seller-one", "seller-two"
REFRESH = {SELLER: "v^1.1#i^1#r^1#refresh-one", OTHER: "v^1.1#i^1#r^1#refresh-two"}

SCENARIO: dict[str, Any] = {
    "seed": 1515,
    "history_days": 2,
    "applications": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                      "ru_name": RU_NAME, "accept_url": ACCEPT_URL}],
    "accounts": [
        {"user_id": SELLER, "username": "seller_one", "marketplaces": ["EBAY_US", "EBAY_GB"],
         "refresh_tokens": [REFRESH[SELLER]]},
        {"user_id": OTHER, "marketplaces": ["EBAY_DE"], "refresh_tokens": [REFRESH[OTHER]]},
    ],
    "consent": {"user_id": SELLER},
    "catalog": [
        {"sku": "MUG-1", "account": SELLER, "marketplace": "EBAY_US", "title": "Mug",
         "quantity": 500, "price": "11.00", "ean": "4006381333931"},
        {"sku": "KETTLE-1", "account": SELLER, "marketplace": "EBAY_US", "title": "Kettle",
         "quantity": 200, "price": "31.00", "upc": "012345678905"},
        {"sku": "TEAPOT-UK", "account": SELLER, "marketplace": "EBAY_GB", "title": "Teapot",
         "quantity": 120, "price": "19.00"},
        {"sku": "DRAFT-1", "account": SELLER, "marketplace": "EBAY_US", "title": "Draft",
         "quantity": 5, "price": "5.00", "published": False},
        {"sku": "TASSE-1", "account": OTHER, "marketplace": "EBAY_DE", "title": "Tasse",
         "quantity": 50, "price": "9.00"},
    ],
    "generator": {"orders_per_day": {"EBAY_US": 20, "EBAY_GB": 6}, "cancel_share": 0.1},
}


def scenario(**changes: Any):
    data = copy.deepcopy(SCENARIO)
    data.update(changes)
    return parse_scenario(data, source="tests:ebay")


@pytest.fixture
def scenario_changes() -> dict[str, Any]:
    return {}


@pytest.fixture
async def world(scenario_changes) -> World:
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
    """``make_integration("US")`` → an integration of the seller's account on eBay US."""
    runtimes: dict[str, dict[str, Any]] = {}

    def make(marketplace: str = "US", *, user: str = SELLER,
             credentials: dict[str, str] | None = None, **settings: Any) -> Integration:
        creds = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "ru_name": RU_NAME,
                 "refresh_token": REFRESH[user]}
        creds.update(credentials or {})
        values = {"history_days": 3, "endpoint": BASE_URL}
        values.update(settings)
        integration = Integration(alias=f"ebay-{marketplace.lower()}", channel="ebay",
                                  account=user, marketplace=marketplace, settings=values,
                                  credentials=creds, account_runtime=runtimes.setdefault(user, {}))
        integration.http = make_client(
            httpx.ASGITransport(app=app), governor,
            bucket_for=lambda operation: manifest.bucket_key(integration, operation),
            plan_for=manifest.INFO.usage_plans.get, rate_header=None)
        return integration

    return make


@pytest.fixture
def sandbox(app) -> httpx.AsyncClient:
    """A plain client for the simulator's control API and raw eBay calls."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)


async def user_token(sandbox: httpx.AsyncClient, user: str = SELLER) -> str:
    import base64
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    response = await sandbox.post("/identity/v1/oauth2/token", headers={
        "authorization": f"Basic {basic}"}, data={"grant_type": "refresh_token",
                                                   "refresh_token": REFRESH[user]})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]
