"""The whole daemon against the in-process SP-API simulator.

A ``Daemon`` built from a real YAML configuration, with the Amazon plugin and the core
exactly as in production; only the network is replaced by ``httpx.ASGITransport`` to the
simulator, and time by trio's ``MockClock``. The clock jumps only after the run loop has
been idle for a few real milliseconds, so it does not race ahead while a database call
works in a thread (DESIGN.md's warning).
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from marketsync.core import clock
from marketsync.core.runtime import plugins as plugin_loading
from marketsync.core.runtime.daemon import Daemon
from marketsync.core.config.schema import parse_config
from marketsync.core.store import Store
from marketsync.plugins.amazon.sandbox import World, create_app
from marketsync.plugins.amazon.sandbox.scenario import parse_scenario

START = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
SANDBOX = "http://sandbox.local"
CLIENT_ID = "amzn1.application-oa2-client.e2e"
CLIENT_SECRET = "amzn1.oa2-cs.v1.e2e-secret"
APP_ID = "amzn1.sellerapps.app.e2e"
NA, EU, FE = "A1E2ENA", "A2E2EEU", "A3E2EFE"
REFRESH = {NA: "Atzr|e2e-na", EU: "Atzr|e2e-eu", FE: "Atzr|e2e-fe"}

SCENARIO: dict[str, Any] = {
    "seed": 777,
    "history_days": 2,
    "data_lag_seconds": [60, 120],
    "applications": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                      "application_id": APP_ID,
                      "redirect_uris": ["http://127.0.0.1:8470/channels/amazon/callback"]}],
    "accounts": [
        {"seller_id": NA, "region": "NA", "marketplaces": ["US"], "pii_access": True,
         "refresh_tokens": [REFRESH[NA]], "name": "E2E NA"},
        {"seller_id": EU, "region": "EU", "marketplaces": ["UK", "DE"], "pii_access": True,
         "refresh_tokens": [REFRESH[EU]], "name": "E2E EU"},
        {"seller_id": FE, "region": "FE", "marketplaces": ["AU"], "pii_access": False,
         "refresh_tokens": [REFRESH[FE]], "name": "E2E AU"},
    ],
    "consent": {"seller_id": EU},
    "catalog": [
        {"sku": "MUG-1", "asin": "B0E2E00001", "title": "Mug", "mfn_quantity": 40,
         "handling_time": 1, "prices": {"US": "10.00", "UK": "8.00", "DE": "9.00", "AU": "15.00"}},
        {"sku": "KETTLE-1", "asin": "B0E2E00002", "title": "Kettle", "mfn_quantity": 15,
         "handling_time": 2, "prices": {"US": "30.00", "UK": "25.00", "DE": "28.00", "AU": "45.00"}},
        {"sku": "SPORK-FBA", "asin": "B0E2E00003", "title": "Spork", "fba_quantity": 80,
         "prices": {"US": "5.00", "UK": "4.00", "DE": "4.50", "AU": "8.00"}},
    ],
    "generator": {"orders_per_day": {"US": 12, "UK": 6, "DE": 8, "AU": 4}, "fba_share": 0.3,
                  "cancel_by_buyer": 0.05, "cancel_by_amazon": 0.02},
}

PII_KEY = "ZTJlLXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmchISEhISE="  # base64 of 32 test bytes
ENV = {"E2E_SECRET": CLIENT_SECRET, "E2E_PII_KEY": PII_KEY, **{f"E2E_REFRESH_{k}": v for k, v in
                                       {"NA": REFRESH[NA], "EU": REFRESH[EU], "FE": REFRESH[FE]}.items()}}


def config_text(integrations: list[tuple[str, str, str]] | None = None, extra: str = "",
                without_refresh: tuple[str, ...] = (), review: bool = False,
                valve: bool = False) -> str:
    """YAML for accounts na/eu/fe on the simulator and the given (alias, account, marketplace).

    The review of the first push and the safety valve are off unless asked for: most tests
    push at once, and the scenario's regions sold from separate 40-unit shelves, so the
    first push that puts one local figure on all of them is a large cut by design."""
    integrations = integrations or [("amazon-us", "na", "US"), ("amazon-de", "eu", "DE"),
                                    ("amazon-uk", "eu", "UK"), ("amazon-au", "fe", "AU")]
    lines = ["pii:", "  key: ${E2E_PII_KEY}", "accounts:"]
    sellers = {"NA": NA, "EU": EU, "FE": FE}
    for name, seller in (("na", "NA"), ("eu", "EU"), ("fe", "FE")):
        lines += [f"  {name}:", "    channel: amazon", f"    endpoint: {SANDBOX}",
                  "    credentials:", f"      client_id: {CLIENT_ID}",
                  "      client_secret: ${E2E_SECRET}",
                  f"      app_id: {APP_ID}"]
        if name not in without_refresh:
            lines += [f"      refresh_token: ${{E2E_REFRESH_{seller}}}",
                      f"      seller_id: {sellers[seller]}"]
    lines.append("integrations:")
    for alias, account, marketplace in integrations:
        lines += [f"  - alias: {alias}", f"    account: {account}", f"    marketplace: {marketplace}"]
        if not review:
            lines.append("    review_first_push: false")
        if not valve:
            lines += ["    push_valve_zeroed_percent: 100", "    push_valve_cut_percent: 100"]
    return "\n".join(lines) + "\n" + extra


def scenario(**changes: Any):
    data = copy.deepcopy(SCENARIO)
    data.update(changes)
    return parse_scenario(data, source="tests:e2e")


@pytest.fixture
def e2e_clock():
    """Autojump after 5 ms of real idleness (see the module docstring). Tests must take
    it as an argument: pytest-trio uses a clock only from the test's own arguments."""
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
def scenario_changes() -> dict[str, Any]:
    return {}


@pytest.fixture
async def world(scenario_changes) -> World:
    clock.set_start(START)
    return World(scenario(**scenario_changes), base_url=SANDBOX)


@pytest.fixture
def plugins():
    return plugin_loading.build(load_entry_points=False)


@pytest.fixture
def make_daemon(world, plugins, tmp_path):
    """``make_daemon(store_url=None, integrations=None)`` → a Daemon on the simulator."""
    app = create_app(world)

    def make(store_url: str | None = None, integrations=None, extra: str = "",
             without_refresh: tuple[str, ...] = (), review: bool = False,
             valve: bool = False) -> Daemon:
        config = parse_config(config_text(integrations, extra, without_refresh, review, valve),
                              plugins.infos(),
                              filename=str(tmp_path / "marketsync.yaml"), environ=ENV)
        store = Store(store_url or f"sqlite:///{tmp_path / 'marketsync.sqlite'}")
        return Daemon(config, plugins=plugins, store=store,
                      transport_factory=lambda account: httpx.ASGITransport(app=app))

    return make
