"""Fixtures for the simulator's tests: a small pinned world, a logged-in client, and a
contract check of response bodies against the official models.

The world starts at a fixed instant (``START``) with a fixed seed, so every test sees the
same orders; time moves only with trio's clock (use ``autojump_clock`` for anything
involving waiting).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx
import jsonschema
import pytest

from marketsync.core import clock
from marketsync.plugins.amazon.sandbox import World, create_app
from marketsync.plugins.amazon.sandbox.scenario import parse_scenario

START = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
#: when the one-seller worlds of the feeds, reports and listings tests begin
ONE_SELLER_START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
#: Amazon's official models: ../shared/spapi beside the repository (as CI lays it out), or
#: wherever MARKETSYNC_SPAPI points.
SPAPI = Path(os.environ.get("MARKETSYNC_SPAPI")
             or Path(__file__).resolve().parents[4].parent / "shared" / "spapi")
MODELS = SPAPI / "models"
BASE_URL = "http://sandbox.local"

CLIENT_ID = "amzn1.application-oa2-client.test"
CLIENT_SECRET = "amzn1.oa2-cs.v1.test-secret"
APPLICATION_ID = "amzn1.sellerapps.app.test"
REDIRECT_URI = "http://127.0.0.1:8470/channels/amazon/callback"
NA, EU, FE = "A1TESTNA", "A2TESTEU", "A3TESTFE"
REFRESH = {NA: "Atzr|test-na", EU: "Atzr|test-eu", FE: "Atzr|test-fe"}
US, CA, UK, DE, AU = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1F83G8C2ARO7P", "A1PA6795UKMFR9", "A39IBJ37TRP1C6"

SMALL_SCENARIO: dict[str, Any] = {
    "seed": 1234,
    "history_days": 1,
    "data_lag_seconds": [60, 120],
    "applications": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                      "application_id": APPLICATION_ID, "redirect_uris": [REDIRECT_URI]}],
    "accounts": [
        {"seller_id": NA, "region": "NA", "marketplaces": ["US", "CA"], "pii_access": True,
         "refresh_tokens": [REFRESH[NA]], "name": "Test NA"},
        {"seller_id": EU, "region": "EU", "marketplaces": ["UK", "DE"], "pii_access": True,
         "refresh_tokens": [REFRESH[EU]], "name": "Test EU"},
        {"seller_id": FE, "region": "FE", "marketplaces": ["AU"], "pii_access": False,
         "refresh_tokens": [REFRESH[FE]], "name": "Test AU"},
    ],
    "consent": {"seller_id": EU},
    "catalog": [
        {"sku": "MUG-1", "asin": "B0TEST0001", "title": "Mug", "mfn_quantity": 50, "handling_time": 1,
         "prices": {"US": "10.00", "CA": "13.00", "UK": "8.00", "DE": "9.00", "AU": "15.00"}},
        {"sku": "KETTLE-1", "asin": "B0TEST0002", "title": "Kettle", "mfn_quantity": 20, "handling_time": 2,
         "prices": {"US": "30.00", "UK": "25.00", "DE": "28.00", "AU": "45.00"}},
        {"sku": "SPORK-FBA", "asin": "B0TEST0003", "title": "Spork", "fba_quantity": 80,
         "prices": {"US": "5.00", "CA": "6.50", "UK": "4.00", "DE": "4.50", "AU": "8.00"}},
    ],
    "generator": {"orders_per_day": {"US": 20, "CA": 3, "UK": 8, "DE": 8, "AU": 4}, "fba_share": 0.3,
                  "cancel_by_buyer": 0.05, "cancel_by_amazon": 0.03},
}


def small_scenario(**changes: Any):
    data = copy.deepcopy(SMALL_SCENARIO)
    data.update(changes)
    return parse_scenario(data, source="tests:small")


@pytest.fixture
async def world() -> World:
    """The small scenario's world, started at ``START``."""
    clock.set_start(START)
    return World(small_scenario(), base_url=BASE_URL)


@pytest.fixture
async def anon(world: World):
    """An httpx client on the in-process app, without a token."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(world)), base_url=BASE_URL) as c:
        yield c


Login = Callable[[str], Awaitable[dict[str, str]]]


@pytest.fixture
async def login(anon: httpx.AsyncClient) -> Login:
    """``await login(seller_id)`` → headers carrying a fresh access token for that seller."""

    async def log_in(seller_id: str) -> dict[str, str]:
        response = await anon.post("/auth/o2/token", data={
            "grant_type": "refresh_token", "refresh_token": REFRESH[seller_id],
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        assert response.status_code == 200, response.text
        return {"x-amz-access-token": response.json()["access_token"]}

    return log_in


@pytest.fixture
async def client(anon: httpx.AsyncClient, login: Login):
    """The client logged in as the NA account (``x-amz-access-token`` set)."""
    anon.headers.update(await login(NA))
    return anon


# -- contract ---------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _model(model_file: str) -> dict[str, Any]:
    return json.loads((MODELS / model_file).read_text())


def _operation(model: dict[str, Any], operation_id: str) -> dict[str, Any]:
    for item in model["paths"].values():
        for method, operation in item.items():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                return operation
    raise AssertionError(f"operation {operation_id} not in the model")


def assert_matches_model(response: httpx.Response, model_file: str, operation_id: str) -> None:
    """The body (and declared headers) of ``response`` match the official model's
    definition for its status code. Skips, with the reason, only when the models are absent."""
    if not (MODELS / model_file).exists():
        pytest.skip(f"contract check needs the official models at {MODELS} (absent here)")
    model = _model(model_file)
    declared = _operation(model, operation_id)["responses"]
    status = str(response.status_code)
    assert status in declared, f"{operation_id} does not declare status {status}: {response.text}"
    spec = declared[status]
    for header in spec.get("headers", {}):
        if header == "x-amzn-RequestId":
            assert header.lower() in response.headers, f"{operation_id} {status} lacks {header}"
    schema = spec.get("schema")
    if schema is None:
        assert response.content == b"", f"{operation_id} {status} must have no body"
        return
    full = {**schema, "definitions": model["definitions"]}
    jsonschema.Draft4Validator(full).validate(response.json())


@pytest.fixture
def contract() -> Callable[[httpx.Response, str, str], None]:
    """Skips at setup, with the reason, when the models are absent (a skip raised inside
    a trio test reaches pytest without its message)."""
    if not MODELS.is_dir():
        pytest.skip(f"contract check needs Amazon's official models in {MODELS}: put "
                    "shared/spapi beside the repository or set MARKETSYNC_SPAPI")
    return assert_matches_model


@asynccontextmanager
async def signed_in(scenario: dict[str, Any], seller: str,
                    client_id: str) -> AsyncIterator[tuple[World, httpx.AsyncClient]]:
    """A world from ``scenario`` and a client holding a valid access token for ``seller``:
    what a test of one operation needs, without going through the LWA exchange."""
    clock.set_start(ONE_SELLER_START)
    world = World(parse_scenario(scenario))
    token, _ = world.issue_access_token(seller, client_id, world.now())
    transport = httpx.ASGITransport(app=create_app(world))
    async with httpx.AsyncClient(transport=transport, base_url=world.base_url,
                                 headers={"x-amz-access-token": token}) as client:
        yield world, client
