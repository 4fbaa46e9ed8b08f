"""The example plugin in docs/examples works as docs/plugins.md says it does."""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from marketsync.core import clock
from marketsync.core.runtime import plugins as plugin_loading
from marketsync.core.config.schema import parse_config
from marketsync.core.errors import IntegrationAuthFailed
from marketsync.core.runtime.governor import Governor
from marketsync.core.runtime.http import make_client
from marketsync.core.types import Cursor, Integration, OrderStatus, StockUpdate

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "marketsync_shopfront.py"
START = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def shopfront():
    spec = importlib.util.spec_from_file_location("marketsync_shopfront", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["marketsync_shopfront"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("marketsync_shopfront", None)


def fake_shopfront(seen: list[dict]) -> Starlette:
    """Two pages of orders (one unreadable) and a stock endpoint rejecting unknown SKUs."""
    pages = {
        1: {"orders": [{"id": 1, "status": "open", "created": "2026-11-01T10:00:00+00:00",
                        "updated": "2026-11-01T10:00:00+00:00",
                        "lines": [{"sku": "MUG", "qty": 2}]},
                       {"id": 2, "status": "teleported", "created": "x", "updated": "x", "lines": []}],
            "next_page": 2},
        2: {"orders": [{"id": 3, "status": "cancelled", "created": "2026-11-01T11:00:00+00:00",
                        "updated": "2026-11-01T12:00:00+00:00",
                        "lines": [{"sku": "KETTLE", "qty": 1}]}],
            "next_page": None},
    }

    async def orders(request: Request):
        if request.headers.get("authorization") != "Bearer good-key":
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        seen.append(dict(request.query_params))
        return JSONResponse(pages[int(request.query_params["page"])])

    async def stock(request: Request):
        items = (await request.json())["items"]
        return JSONResponse({"results": [
            {"sku": i["sku"], "ok": i["sku"] != "GHOST", **({"error": "unknown SKU"} if i["sku"] == "GHOST" else {})}
            for i in items]}, headers={"x-batch-id": "b-1"})

    return Starlette(routes=[Route("/orders", orders), Route("/stock", stock, methods=["PUT"])])


def integration_for(shopfront, app, api_key="good-key") -> Integration:
    info = shopfront.channel_info()
    integration = Integration(alias="shop", channel="shopfront", account="main", marketplace="WEB",
                              settings={}, credentials={"api_key": api_key})
    integration.http = make_client(
        httpx.ASGITransport(app), Governor(), base_url="http://shopfront.test",
        bucket_for=lambda op: ("shopfront", "main", op), plan_for=info.usage_plans.get,
        rate_header=None)
    return integration


def test_example_plugin_is_a_channel_with_its_hooks(shopfront):
    """Registered like an entry point would be, it serves channel "shopfront"."""
    loaded = plugin_loading.build(builtin=(), extra=[shopfront], load_entry_points=False)
    hooks = loaded.channel("shopfront")
    assert hooks.implemented == {"channel_info", "check_credentials", "import_orders", "push_stock"}


def test_a_config_using_the_example_channel_validates(shopfront, monkeypatch):
    """The plugin's credential rules reach config validation: the API key must be a secret."""
    monkeypatch.setenv("SHOP_KEY", "good-key")
    channels = {"shopfront": shopfront.channel_info()}
    text = ("accounts:\n  main:\n    channel: shopfront\n    credentials:\n"
            "      api_key: ${SHOP_KEY}\nintegrations:\n  - alias: shop\n    account: main\n"
            "    marketplace: WEB\n")
    config = parse_config(text, channels, filename="shop.yaml", environ={"SHOP_KEY": "good-key"})
    assert config.integration("shop").schedule_for("import_orders") == 300


async def test_import_orders_pages_quarantines_and_moves_the_watermark(shopfront, autojump_clock):
    """Two pages, one unreadable order rejected (not raised), watermark = the run's start."""
    clock.set_start(START)
    seen: list[dict] = []
    integration = integration_for(shopfront, fake_shopfront(seen))
    first = await shopfront.import_orders(integration, Cursor())
    assert [o.channel_order_id for o in first.items] == ["1"] and not first.done
    assert first.rejected[0].record_id == "2"
    second = await shopfront.import_orders(integration, first.next)
    assert second.done and second.items[0].status is OrderStatus.CANCELED
    assert second.next.since == START
    assert [s["page"] for s in seen] == ["1", "2"]


async def test_wrong_api_key_is_an_auth_failure(shopfront):
    """401 → IntegrationAuthFailed, which the core turns into INCOMPLETE."""
    integration = integration_for(shopfront, fake_shopfront([]), api_key="bad")
    with pytest.raises(IntegrationAuthFailed):
        await shopfront.check_credentials(integration)


async def test_push_stock_returns_per_sku_results(shopfront):
    """A synchronous channel answers with results at once (poll_after 0)."""
    integration = integration_for(shopfront, fake_shopfront([]))
    submission = await shopfront.push_stock(integration, [
        StockUpdate(channel_sku="MUG", quantity=3), StockUpdate(channel_sku="GHOST", quantity=1)])
    assert submission.poll_after == 0 and submission.channel_id == "b-1"
    assert [(r.channel_sku, r.accepted) for r in submission.results] == [("MUG", True), ("GHOST", False)]
